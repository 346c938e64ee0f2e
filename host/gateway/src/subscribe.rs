//! `InvalidationService.Subscribe`: a subscriber's replay of the retained
//! events after its resume point, then the live feed, filtered by agent
//! (SPEC.md §9). Over NATS, the backend's own subscription (`nats.rs`).

// Without `nats` the backend has one variant; the match stays, so the
// code reads the same with and without it.
#![cfg_attr(not(feature = "nats"), allow(clippy::infallible_destructuring_match))]

use crate::auth::check_token;
use crate::validate::{MAX_ID_BYTES, check_len};
use crate::{Backend, Gateway};
use approval_proto::grpc::invalidation_service_server::InvalidationService;
use approval_proto::{Event, InvalidationEvent, SubscribeRequest};
use futures::Stream;
use std::pin::Pin;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

/// Whether a subscriber for `agent_id` gets `event`.
fn wanted(agent_id: &str, event: &InvalidationEvent) -> bool {
    match &event.event {
        Some(Event::PolicyInvalidated(p)) => {
            agent_id.is_empty() || p.agent_id.is_empty() || p.agent_id == agent_id
        }
        _ => true,
    }
}

/// The stream a `Subscribe` answers with.
pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<InvalidationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl InvalidationService for Gateway {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        check_token(self.subscribe_token.as_ref(), &request)?;
        let SubscribeRequest {
            agent_id,
            last_seq_seen,
            log_id,
        } = request.into_inner();
        check_len("agent_id", &agent_id, 0, MAX_ID_BYTES)?;
        let log = match &self.log {
            Backend::Memory(log) => log,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => {
                let closing = self.closing.clone();
                let events =
                    crate::nats::subscribe(log, &agent_id, last_seq_seen, log_id, closing).await?;
                return Ok(Response::new(events));
            }
        };
        let Some(slot) = log.admit() else {
            return Err(Status::resource_exhausted(
                "too many subscribers; retry later (with backoff)",
            ));
        };
        let (from, backlog, mut live) = log.follow(last_seq_seen, log_id);
        let mut closing = self.closing.clone();
        let mut sent = backlog.last().map_or(from, |e| e.seq);
        let stream = async_stream::stream! {
            // Holds the subscriber's place until the stream is dropped.
            let _slot = slot;
            for event in backlog {
                if wanted(&agent_id, &event) {
                    yield Ok(InvalidationEvent::clone(&event));
                }
            }
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    () = async { let _ = closing.wait_for(|closed| *closed).await; } => {
                        yield Err(Status::unavailable("gateway shutting down; resubscribe from last_seq"));
                        break;
                    }
                };
                match next {
                    Ok(event) if event.seq > sent => {
                        sent = event.seq;
                        if wanted(&agent_id, &event) {
                            yield Ok(InvalidationEvent::clone(&event));
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        yield Err(Status::resource_exhausted(format!(
                            "subscriber lagged {n} events; resubscribe from last_seq {sent}"
                        )));
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}
