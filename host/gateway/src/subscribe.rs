//! `InvalidationService`: `Subscribe`, a subscriber's replay of the
//! retained events after its resume point, then the live feed, filtered by
//! agent; and `Lookup`, the recorded verdicts of given request ids, for
//! waits that start after the replay retention dropped their verdict
//! (SPEC.md §9). Over NATS, the backend's own (`nats.rs`).

// Without `nats` the backend has one variant; the match stays, so the
// code reads the same with and without it.
#![cfg_attr(not(feature = "nats"), allow(clippy::infallible_destructuring_match))]

use crate::auth::authorized;
use crate::closing::until_closing;
use crate::validate::{MAX_ID_BYTES, check_len, check_lookup};
use crate::{Backend, EventStream, Gateway};
use approval_proto::grpc::invalidation_service_server::InvalidationService;
use approval_proto::{Event, InvalidationEvent, LookupReply, LookupRequest, SubscribeRequest};
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

#[tonic::async_trait]
impl InvalidationService for Gateway {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let SubscribeRequest {
            agent_id,
            last_seq_seen,
            log_id,
        } = authorized(self.subscribe_token.as_ref(), request)?;
        check_len("agent_id", &agent_id, 0, MAX_ID_BYTES)?;
        let log = match &self.log {
            Backend::Memory(log) => log,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => {
                let events = crate::nats::subscribe(log, &agent_id, last_seq_seen, log_id).await?;
                return Ok(Response::new(until_closing(events, self.closing.clone())));
            }
        };
        let Some(slot) = log.admit() else {
            return Err(Status::resource_exhausted(
                "too many subscribers; retry later (with backoff)",
            ));
        };
        let (from, backlog, mut live) = log.follow(last_seq_seen, log_id);
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
                match live.recv().await {
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
        Ok(Response::new(until_closing(stream, self.closing.clone())))
    }

    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupReply>, Status> {
        let LookupRequest { request_id: ids } = authorized(self.subscribe_token.as_ref(), request)?;
        check_lookup(&ids)?;
        let events = match &self.log {
            Backend::Memory(log) => log
                .lookup(ids)
                .await
                .map_err(|e| Status::unavailable(format!("event log: {e}")))?,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => crate::nats::lookup(log, &ids).await?,
        };
        Ok(Response::new(LookupReply { events }))
    }
}
