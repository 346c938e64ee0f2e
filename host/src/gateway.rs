//! A development gateway: a tonic server of `InvalidationService.Subscribe`
//! (a sequenced in-memory log with replay from `last_seq_seen`) and
//! `ReviewService` (publish a verdict or a policy invalidation), so the CLI
//! can play gateway, reviewer and agent on one machine, and tests can run the
//! real gRPC path on loopback. Behind the crate's `gateway` feature, so a
//! library user who only embeds a sink compiles no tonic server.
//!
//! # Invariants
//!
//! * Sequence numbers start at 1 and increase by one per published event;
//!   every event carries the log's id, random and non-zero, drawn when the
//!   log is created (S16): a restarted gateway with a fresh log has another
//!   id, so sinks open a new window instead of dropping its events as
//!   duplicates of the old log's.
//! * A subscriber that names another log (both ids non-zero) gets this log's
//!   retention from the start, whatever its `last_seq_seen`.
//! * A subscriber's replay and its live feed are taken under the same lock
//!   as publishing, so it sees every retained event after `last_seq_seen`
//!   exactly once, in order, with no gap between replay and live.
//! * Retention is bounded by count and bytes ([`LogLimits`]); a subscriber
//!   asking for events older than what is retained gets the oldest retained
//!   onwards (and a warning in the log). Dropped events are counted.
//! * At most `max_subscribers` subscriptions are open; more are refused
//!   (`RESOURCE_EXHAUSTED`, counted).
//! * A subscriber too slow for the live feed gets an error and must
//!   resubscribe from its `last_seq` (the pump does).
//! * `agent_id` filters policy invalidations only (an empty one in the
//!   request means every agent's); verdicts reach every subscriber.

use approval_proto::grpc::invalidation_service_server::{
    InvalidationService, InvalidationServiceServer,
};
use approval_proto::grpc::review_service_server::{ReviewService, ReviewServiceServer};
use approval_proto::{
    ApprovalResolved, Decision, Event, InvalidationEvent, PolicyInvalidated, PublishReply,
    SubscribeRequest,
};
use futures::Stream;
use prost::Message;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status};

/// Live events buffered per subscriber before it counts as lagging.
const LIVE_BUFFER: usize = 4096;

/// Bounds of a [`GatewayLog`] (each clamped to at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most events kept for replay. Default 100,000.
    pub retention: usize,
    /// Most encoded bytes kept for replay; the oldest events go first.
    /// Default 256 MiB.
    pub retain_bytes: usize,
    /// Most open subscriptions; more are refused with `RESOURCE_EXHAUSTED`.
    /// Default 10,000.
    pub max_subscribers: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            retention: 100_000,
            retain_bytes: 256 << 20,
            max_subscribers: 10_000,
        }
    }
}

/// What a [`GatewayLog`] holds and has refused or dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// The newest sequence number published.
    pub last_seq: u64,
    /// Events retained for replay.
    pub retained: usize,
    /// Their encoded size.
    pub retained_bytes: usize,
    /// Events dropped from retention (count or bytes bound).
    pub dropped: u64,
    /// Subscriptions open now.
    pub subscribers: usize,
    /// Subscriptions refused (over `max_subscribers`).
    pub refused_subscribers: u64,
}

/// The gateway's sequenced event log; shared by every server instance that
/// serves it (a restarted server keeps the log).
pub struct GatewayLog {
    id: u64,
    limits: LogLimits,
    state: Mutex<LogState>,
    live: broadcast::Sender<Arc<InvalidationEvent>>,
    subscribers: AtomicUsize,
    refused: AtomicU64,
}

struct LogState {
    /// Retained events with their encoded size, oldest first; their seqs
    /// are consecutive, so a resume point is an index.
    events: VecDeque<(Arc<InvalidationEvent>, usize)>,
    bytes: usize,
    last_seq: u64,
    dropped: u64,
}

impl GatewayLog {
    /// A log keeping the latest `retention` events for replay (other
    /// limits at their defaults).
    pub fn new(retention: usize) -> Arc<Self> {
        Self::with_limits(LogLimits {
            retention,
            ..LogLimits::default()
        })
    }

    /// A log with these bounds.
    pub fn with_limits(limits: LogLimits) -> Arc<Self> {
        let limits = LogLimits {
            retention: limits.retention.max(1),
            retain_bytes: limits.retain_bytes.max(1),
            max_subscribers: limits.max_subscribers.max(1),
        };
        Arc::new(GatewayLog {
            // Drawn from 1..: never 0, which means "unknown log".
            id: fastrand::u64(1..),
            limits,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                bytes: 0,
                last_seq: 0,
                dropped: 0,
            }),
            live: broadcast::channel(LIVE_BUFFER).0,
            subscribers: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event with the next sequence number and sends it to live
    /// subscribers; returns the number. The oldest events leave retention
    /// past its count or byte bound (counted in `LogStats::dropped`).
    pub fn publish(&self, event: Event) -> u64 {
        let mut state = self.lock();
        state.last_seq += 1;
        let event = Arc::new(InvalidationEvent {
            seq: state.last_seq,
            event: Some(event),
            log_id: self.id,
        });
        let size = event.encoded_len();
        state.events.push_back((Arc::clone(&event), size));
        state.bytes = state.bytes.saturating_add(size);
        while state.events.len() > self.limits.retention
            || (state.bytes > self.limits.retain_bytes && state.events.len() > 1)
        {
            let Some((_, size)) = state.events.pop_front() else {
                break;
            };
            state.bytes = state.bytes.saturating_sub(size);
            state.dropped += 1;
        }
        // No live subscriber is fine: the log keeps it for replay.
        let _ = self.live.send(event);
        state.last_seq
    }

    /// The newest sequence number published.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// This log's identity (random, non-zero).
    pub fn log_id(&self) -> u64 {
        self.id
    }

    /// What the log holds and has refused or dropped.
    pub fn stats(&self) -> LogStats {
        let state = self.lock();
        LogStats {
            last_seq: state.last_seq,
            retained: state.events.len(),
            retained_bytes: state.bytes,
            dropped: state.dropped,
            subscribers: self.subscribers.load(Ordering::Relaxed),
            refused_subscribers: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Takes a subscriber slot; `None` (counted) when all are taken.
    fn admit(self: &Arc<Self>) -> Option<SubscriberSlot> {
        let taken = self.subscribers.fetch_add(1, Ordering::AcqRel);
        if taken >= self.limits.max_subscribers {
            self.subscribers.fetch_sub(1, Ordering::AcqRel);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(SubscriberSlot(Arc::clone(self)))
    }

    /// Where a subscriber of `(log_id, last_seq)` starts in this log (0 if
    /// `log_id` names another log), the retained events after that, and a
    /// live feed of the rest. Under the lock this only clones `Arc`s of the
    /// events after the resume point (found by index: seqs are
    /// consecutive), so a subscribe never copies the backlog's bytes while
    /// publishers wait.
    fn follow(
        &self,
        last_seq: u64,
        log_id: u64,
    ) -> (
        u64,
        Vec<Arc<InvalidationEvent>>,
        broadcast::Receiver<Arc<InvalidationEvent>>,
    ) {
        let last_seq = if log_id != 0 && log_id != self.id {
            tracing::info!(
                theirs = log_id,
                ours = self.id,
                "subscriber resumes another log; replaying from the start"
            );
            0
        } else {
            last_seq
        };
        let state = self.lock();
        let live = self.live.subscribe();
        let oldest = state
            .events
            .front()
            .map_or(state.last_seq + 1, |(e, _)| e.seq);
        if oldest > last_seq.saturating_add(1) {
            tracing::warn!(
                last_seq,
                oldest,
                "subscriber resumes before retention; events were lost"
            );
        }
        let skip = usize::try_from(last_seq.saturating_add(1).saturating_sub(oldest))
            .unwrap_or(usize::MAX);
        let backlog = state
            .events
            .iter()
            .skip(skip)
            .map(|(e, _)| Arc::clone(e))
            .collect();
        (last_seq, backlog, live)
    }
}

/// An open subscription's place in `max_subscribers`; freed when dropped.
struct SubscriberSlot(Arc<GatewayLog>);

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The gateway's gRPC services over one [`GatewayLog`].
#[derive(Clone)]
pub struct Gateway {
    log: Arc<GatewayLog>,
    /// Turns true when this server instance shuts down, ending its
    /// subscriptions (they never end on their own, so graceful shutdown
    /// would otherwise wait for ever).
    closing: watch::Receiver<bool>,
}

impl Gateway {
    /// Services over `log`.
    pub fn new(log: Arc<GatewayLog>) -> Self {
        Gateway {
            log,
            closing: watch::channel(false).1,
        }
    }

    /// Serves both services on `listener` until `shutdown` completes; then
    /// ends every open subscription with `UNAVAILABLE` (subscribers resume
    /// from their `last_seq` elsewhere or later) and returns.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let (closing, closed) = watch::channel(false);
        self.closing = closed;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(InvalidationServiceServer::new(self.clone()))
            .add_service(
                ReviewServiceServer::new(self).max_decoding_message_size(MAX_REVIEW_REQUEST_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await
    }
}

/// Whether a subscriber for `agent_id` gets `event`.
fn wanted(agent_id: &str, event: &InvalidationEvent) -> bool {
    match &event.event {
        Some(Event::PolicyInvalidated(p)) => {
            agent_id.is_empty() || p.agent_id.is_empty() || p.agent_id == agent_id
        }
        _ => true,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<InvalidationEvent, Status>> + Send>>;

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
        } = request.into_inner();
        let Some(slot) = self.log.admit() else {
            return Err(Status::resource_exhausted(
                "too many subscribers; retry later (with backoff)",
            ));
        };
        let (from, backlog, mut live) = self.log.follow(last_seq_seen, log_id);
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

#[tonic::async_trait]
impl ReviewService for Gateway {
    async fn resolve(
        &self,
        request: Request<ApprovalResolved>,
    ) -> Result<Response<PublishReply>, Status> {
        let resolved = request.into_inner();
        check_resolve(&resolved)?;
        let seq = self.log.publish(Event::ApprovalResolved(resolved));
        Ok(Response::new(PublishReply { seq }))
    }

    async fn invalidate(
        &self,
        request: Request<PolicyInvalidated>,
    ) -> Result<Response<PublishReply>, Status> {
        let invalidated = request.into_inner();
        check_len("agent_id", &invalidated.agent_id, 0, MAX_ID_BYTES)?;
        let seq = self.log.publish(Event::PolicyInvalidated(invalidated));
        Ok(Response::new(PublishReply { seq }))
    }
}

/// Longest request id, reviewer and agent id a gateway accepts, in bytes
/// (the sink's default request-id limit: a longer id would only be rejected
/// by every sink).
pub const MAX_ID_BYTES: usize = 256;

/// Largest `ReviewService` request a gateway decodes: every valid request
/// is far smaller, so a bigger one is refused before it is read whole.
pub const MAX_REVIEW_REQUEST_BYTES: usize = 16 * 1024;

/// DESIGN section 9: a `Resolve` publishes nothing unless every field is in
/// range, so the gateway's own events stay small (`INVALID_ARGUMENT`).
fn check_resolve(resolved: &ApprovalResolved) -> Result<(), Status> {
    check_len("request_id", &resolved.request_id, 1, MAX_ID_BYTES)?;
    check_len("reviewer", &resolved.reviewer, 0, MAX_ID_BYTES)?;
    match Decision::try_from(resolved.decision) {
        Ok(Decision::Approved | Decision::Denied) => Ok(()),
        _ => Err(Status::invalid_argument(format!(
            "decision {} is not DECISION_APPROVED or DECISION_DENIED",
            resolved.decision
        ))),
    }
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Status> {
    if (min..=max).contains(&value.len()) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} is {} bytes; {min} to {max} accepted",
            value.len()
        )))
    }
}
