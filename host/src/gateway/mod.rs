//! A development gateway: a tonic server of `InvalidationService.Subscribe`
//! (a sequenced in-memory log with replay from `last_seq_seen`) and
//! `ReviewService` (publish a verdict or a policy invalidation), so the CLI
//! can play gateway, reviewer and agent on one machine, and tests can run the
//! real gRPC path on loopback. Behind the crate's `gateway` feature, so a
//! library user who only embeds a sink compiles no tonic server.
//!
//! `mod.rs` holds the two services and `Resolve`'s validation; `log.rs` the
//! [`GatewayLog`] they serve; `auth.rs` tokens, trusted keys and first-wins
//! (DESIGN section 9); `nats.rs` (feature `nats`) the same services over the
//! shared JetStream log instead, for stateless gateways (section 10).
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

// Without `nats` the backend has one variant; the matches stay, so the
// code reads the same with and without it.
#![cfg_attr(not(feature = "nats"), allow(clippy::infallible_destructuring_match))]

use crate::trust::TrustedKey;
use approval_proto::grpc::invalidation_service_server::{
    InvalidationService, InvalidationServiceServer,
};
use approval_proto::grpc::review_service_server::{ReviewService, ReviewServiceServer};
use approval_proto::{
    ApprovalResolved, Decision, Event, InvalidationEvent, PolicyInvalidated, PublishReply,
    SubscribeRequest,
};
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

mod auth;
mod log;
#[cfg(feature = "nats")]
mod nats;

pub use auth::{FIRST_WINS_CAPACITY, Token};
pub use log::{GatewayLog, LogLimits, LogStats};

use auth::{Reviewers, check_token};

/// The gateway's TLS identity (PEM) and, for mTLS, the CA its clients'
/// certificates must chain to.
#[derive(Clone)]
pub struct ServerTls {
    /// The certificate chain.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// Require client certificates issued by this CA.
    pub client_ca_pem: Option<String>,
}

/// Where a gateway's events live.
#[derive(Clone)]
enum Backend {
    /// Its own in-memory log.
    Memory(Arc<GatewayLog>),
    /// The shared JetStream log (stateless gateways).
    #[cfg(feature = "nats")]
    Nats(Box<crate::nats::VerdictLog>),
}

/// The gateway's gRPC services over one [`GatewayLog`], or (feature `nats`)
/// over the shared JetStream log.
#[derive(Clone)]
pub struct Gateway {
    log: Backend,
    /// Turns true when this server instance shuts down, ending its
    /// subscriptions (they never end on their own, so graceful shutdown
    /// would otherwise wait for ever).
    closing: watch::Receiver<bool>,
    review_token: Option<Token>,
    subscribe_token: Option<Token>,
    reviewers: Option<Arc<Reviewers>>,
    tls: Option<ServerTls>,
}

impl Gateway {
    /// Services over `log`: open to anyone who can connect, unsigned
    /// verdicts accepted (development; see the methods below).
    pub fn new(log: Arc<GatewayLog>) -> Self {
        Self::over(Backend::Memory(log))
    }

    /// Services over the shared JetStream log: any number of gateways serve
    /// one stream; the log itself lets the first verdict per id win.
    #[cfg(feature = "nats")]
    pub fn nats(log: crate::nats::VerdictLog) -> Self {
        Self::over(Backend::Nats(Box::new(log)))
    }

    fn over(log: Backend) -> Self {
        Gateway {
            log,
            closing: watch::channel(false).1,
            review_token: None,
            subscribe_token: None,
            reviewers: None,
            tls: None,
        }
    }

    /// Requires this bearer token on `ReviewService` calls.
    pub fn review_token(mut self, token: Token) -> Self {
        self.review_token = Some(token);
        self
    }

    /// Requires this bearer token on `Subscribe`.
    pub fn subscribe_token(mut self, token: Token) -> Self {
        self.subscribe_token = Some(token);
        self
    }

    /// Accepts only verdicts signed by these reviewer keys
    /// (`PERMISSION_DENIED` otherwise) and enforces first-wins per request
    /// id (`ALREADY_EXISTS` for the other verdict). Fails for a bad key.
    pub fn trusted_keys(mut self, keys: &[TrustedKey]) -> Result<Self, &'static str> {
        self.reviewers = Reviewers::new(keys)?.map(Arc::new);
        Ok(self)
    }

    /// Serves TLS with this identity (and mTLS with its client CA).
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
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
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            let mut config =
                ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                config = config.client_ca_root(Certificate::from_pem(ca));
            }
            server = server.tls_config(config)?;
        }
        server
            .add_service(
                InvalidationServiceServer::new(self.clone())
                    .max_decoding_message_size(MAX_REVIEW_REQUEST_BYTES),
            )
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
                    nats::subscribe(log, &agent_id, last_seq_seen, log_id, closing).await?;
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

#[tonic::async_trait]
impl ReviewService for Gateway {
    async fn resolve(
        &self,
        request: Request<ApprovalResolved>,
    ) -> Result<Response<PublishReply>, Status> {
        check_token(self.review_token.as_ref(), &request)?;
        let resolved = request.into_inner();
        check_resolve(&resolved)?;
        let log = match &self.log {
            Backend::Memory(log) => log,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => {
                // The log enforces first-wins; only the signature is ours.
                if let Some(reviewers) = &self.reviewers {
                    reviewers.verify(&resolved)?;
                }
                let seq = nats::resolve(log, &resolved).await?;
                return Ok(Response::new(PublishReply { seq }));
            }
        };
        let seq = match &self.reviewers {
            None => log.publish(Event::ApprovalResolved(resolved)),
            Some(reviewers) => {
                let verdict = reviewers.verify(&resolved)?;
                let id = resolved.request_id.clone();
                reviewers.first_wins(&id, verdict, || {
                    log.publish(Event::ApprovalResolved(resolved))
                })?
            }
        };
        Ok(Response::new(PublishReply { seq }))
    }

    async fn invalidate(
        &self,
        request: Request<PolicyInvalidated>,
    ) -> Result<Response<PublishReply>, Status> {
        check_token(self.review_token.as_ref(), &request)?;
        let invalidated = request.into_inner();
        check_len("agent_id", &invalidated.agent_id, 0, MAX_ID_BYTES)?;
        let seq = match &self.log {
            Backend::Memory(log) => log.publish(Event::PolicyInvalidated(invalidated)),
            #[cfg(feature = "nats")]
            Backend::Nats(log) => nats::invalidate(log, &invalidated).await?,
        };
        Ok(Response::new(PublishReply { seq }))
    }
}

/// Longest request id, reviewer and agent id a gateway accepts, in bytes
/// (the sink's default request-id limit: a longer id would only be rejected
/// by every sink).
pub const MAX_ID_BYTES: usize = 256;

/// Largest request a gateway decodes (`Subscribe` or `ReviewService`): every
/// valid request is far smaller, so a bigger one is refused before it is
/// read whole.
pub const MAX_REVIEW_REQUEST_BYTES: usize = 16 * 1024;

/// DESIGN section 9: a `Resolve` publishes nothing unless every field is in
/// range, so the gateway's own events stay small (`INVALID_ARGUMENT`).
/// Public so a direct publisher (`resolve --nats`) makes the same checks.
pub fn check_resolve(resolved: &ApprovalResolved) -> Result<(), Status> {
    check_len("request_id", &resolved.request_id, 1, MAX_ID_BYTES)?;
    check_len("reviewer", &resolved.reviewer, 0, MAX_ID_BYTES)?;
    check_len("key_id", &resolved.key_id, 0, MAX_ID_BYTES)?;
    if !(resolved.signature.is_empty() || resolved.signature.len() == 64) {
        return Err(Status::invalid_argument(format!(
            "signature is {} bytes; an Ed25519 signature is 64",
            resolved.signature.len()
        )));
    }
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
