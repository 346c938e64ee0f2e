//! approval-gateway: the single-node gateway (SPEC.md §9). A tonic server
//! of `InvalidationService` (Subscribe: a sequenced log with replay from
//! `last_seq_seen`; Lookup: recorded verdicts by request id) and
//! `ReviewService` (Resolve: publish a verdict, first wins; Invalidate: a
//! policy invalidation), over a durable SQLite log, an in-memory one, or
//! (feature `nats`) the shared JetStream log.
//!
//! Module map:
//!
//! * `lib.rs`: [`Gateway`], its builder and `serve`;
//! * `policy.rs`: what `serve` refuses (no tokens, one secret for both
//!   services, plaintext off loopback) and the `insecure_dev` reminder;
//! * `subscribe.rs`: `InvalidationService`;
//! * `review.rs`: `ReviewService`;
//! * `closing.rs`: ending subscriptions when the server shuts down;
//! * `validate.rs`: what a request must hold ([`check_resolve`], limits);
//! * `log/`: [`GatewayLog`]: its API, the async face of the writer;
//! * `limits.rs`: its bounds, stats and refusals;
//! * `feed.rs`: what the log and its writer share: retention, the live
//!   feed, counters and subscriber slots;
//! * `writer.rs`: the writer thread: group commit and finality;
//! * `store.rs`: the SQLite schema and statements;
//! * `auth.rs`: tokens and trusted keys (SPEC.md §8);
//! * `nats.rs` (feature `nats`): the same services over the shared
//!   JetStream log, for stateless gateways;
//! * `error.rs`: [`GatewayError`].
//!
//! # Invariants
//!
//! * Sequence numbers start at 1 and increase by one per published event;
//!   every event carries the log's id, random and non-zero, drawn when the
//!   log is created and stored with it (S16).
//! * An acknowledged publication is committed (on disk for a durable log).
//! * The first verdict per request id stands for `verdict_ttl`, with or
//!   without trusted keys; the other decision is `ALREADY_EXISTS`.
//! * A subscriber that names another log (both ids non-zero) gets this log's
//!   retention from the start, whatever its `last_seq_seen`.
//! * A subscriber's replay and its live feed are taken under the same lock
//!   as the writer's, so it sees every retained event after `last_seq_seen`
//!   exactly once, in order, with no gap between replay and live.
//! * Retention, the verdict record and subscribers are bounded
//!   ([`LogLimits`]); a subscriber too slow for the live feed gets an error
//!   and resubscribes from its `last_seq`.
//! * `agent_id` filters policy invalidations only; verdicts reach every
//!   subscriber.
//! * A gateway never serves without both tokens, or off loopback without
//!   TLS, unless it was built with [`Gateway::insecure_dev`].

#![warn(missing_docs)]
// Nothing a client sends may panic the gateway.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use approval_host::TrustedKey;
use approval_proto::InvalidationEvent;
use approval_proto::grpc::invalidation_service_server::InvalidationServiceServer;
use approval_proto::grpc::review_service_server::ReviewServiceServer;
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::Status;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

mod auth;
mod closing;
mod error;
mod feed;
mod limits;
mod log;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "nats")]
pub use nats::publish_checked;
mod policy;
mod review;
mod store;
mod subscribe;
mod validate;
mod writer;

pub use auth::{MIN_TOKEN_BYTES, Reviewers, Token, TokenError};
pub use error::GatewayError;
pub use limits::{LogLimits, LogStats, MAX_LOOKUP_IDS, MIN_VERDICT_TTL, PublishError};
pub use log::GatewayLog;
pub use policy::{INSECURE_REMINDER, Policy};
pub use store::{DATABASE_FILE, SCHEMA_VERSION, StoreError};
pub use validate::{MAX_ID_BYTES, MAX_LOOKUP_BYTES, MAX_REQUEST_BYTES, check_resolve};

/// Aborts a task when dropped (the reminder of an `insecure_dev` gateway
/// ends with its `serve`).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The stream a `Subscribe` answers with (both backends).
pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<InvalidationEvent, Status>> + Send>>;

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
    Nats(Box<approval_nats::VerdictLog>),
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
    insecure_dev: bool,
}

impl Gateway {
    /// Services over `log`, unsigned verdicts accepted. [`serve`](Self::serve)
    /// needs both tokens ([`review_token`](Self::review_token),
    /// [`subscribe_token`](Self::subscribe_token)) or
    /// [`insecure_dev`](Self::insecure_dev).
    pub fn new(log: Arc<GatewayLog>) -> Self {
        Self::over(Backend::Memory(log))
    }

    /// Services over the shared JetStream log: any number of gateways serve
    /// one stream; the log itself lets the first verdict per id win.
    #[cfg(feature = "nats")]
    pub fn nats(log: approval_nats::VerdictLog) -> Self {
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
            insecure_dev: false,
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
    pub fn trusted_keys(mut self, keys: &[TrustedKey]) -> Result<Self, GatewayError> {
        self.reviewers = Reviewers::new(keys)
            .map_err(GatewayError::TrustedKey)?
            .map(Arc::new);
        Ok(self)
    }

    /// Serves TLS with this identity (and mTLS with its client CA).
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Lets [`serve`](Self::serve) serve without both tokens, and off
    /// loopback without TLS: anyone who reaches it can then approve any
    /// request. For tests and development only; it logs a warning when it
    /// starts and every [`INSECURE_REMINDER`].
    pub fn insecure_dev(mut self) -> Self {
        self.insecure_dev = true;
        self
    }

    /// Serves both services on `listener` until `shutdown` completes; then
    /// ends every open subscription with `UNAVAILABLE` (subscribers resume
    /// from their `last_seq` elsewhere or later) and returns. Refuses, before
    /// serving anything, to serve without both tokens
    /// ([`GatewayError::Open`]), with one secret for both
    /// ([`GatewayError::SameToken`]), or off loopback without TLS
    /// ([`GatewayError::Exposed`]), unless [`insecure_dev`](Self::insecure_dev).
    ///
    /// # Examples
    ///
    /// The whole loop on loopback: a gateway, a sink subscribed to it, and
    /// a reviewer whose verdict wakes the agent's wait.
    ///
    /// ```
    /// use approval_gateway::{Gateway, GatewayLog, LogLimits, Token};
    /// use approval_grpc::{GrpcSource, ReviewClient};
    /// use approval_host::{ApprovalSink, Decision};
    /// use approval_proto::ApprovalResolved;
    /// use std::time::Duration;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     // In a deployment: `approval-sink tokens --dir DIR` writes two.
    ///     let (review, subscribe) = ("review-secret-0123456789", "subscribe-secret-0123456789");
    ///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     let endpoint = format!("http://{}", listener.local_addr()?);
    ///     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    ///     let gateway = Gateway::new(GatewayLog::in_memory(LogLimits::default())?)
    ///         .review_token(Token::new(review)?)
    ///         .subscribe_token(Token::new(subscribe)?);
    ///     let served = tokio::spawn(gateway.serve(listener, async {
    ///         let _ = stopped.await;
    ///     }));
    ///
    ///     let sink = ApprovalSink::new();
    ///     let _pump = sink.pump(GrpcSource::new(endpoint.as_str()).bearer_token(subscribe));
    ///     let wait = sink.wait_for_approval("req-1", Duration::from_secs(30));
    ///
    ///     let mut reviewer = ReviewClient::connect(&endpoint, None, Some(review)).await?;
    ///     reviewer
    ///         .resolve(ApprovalResolved {
    ///             request_id: "req-1".into(),
    ///             decision: Decision::Approved as i32,
    ///             reviewer: "alice".into(),
    ///             ..ApprovalResolved::default()
    ///         })
    ///         .await?;
    ///     assert_eq!(wait.await, Decision::Approved);
    ///
    ///     let _ = stop.send(());
    ///     served.await??;
    ///     Ok(())
    /// }
    /// ```
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), GatewayError> {
        let addr = listener.local_addr()?;
        Policy {
            review_token: self.review_token.as_ref(),
            subscribe_token: self.subscribe_token.as_ref(),
            tls: self.tls.is_some(),
            insecure_dev: self.insecure_dev,
        }
        .check(addr)?;
        if self.reviewers.is_none() {
            tracing::warn!(
                %addr,
                "no --trusted-key: this gateway publishes unsigned verdicts. Sinks that require \
                 signatures need gateways started with the same --trusted-key files: a gateway that \
                 verifies never publishes a forgery, so its sinks never spend time on one, and a \
                 forgery never becomes the first (final) verdict"
            );
        }
        // Says so now and every minute while it serves.
        let _reminder = self
            .insecure_dev
            .then(|| tokio::spawn(policy::remind_insecure(addr)))
            .map(AbortOnDrop);
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
                    .max_decoding_message_size(MAX_LOOKUP_BYTES),
            )
            .add_service(
                ReviewServiceServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await?;
        Ok(())
    }
}
