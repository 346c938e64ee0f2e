//! Event sources: where the gateway's byte stream comes from, and the pump
//! that feeds it into a sink.
//!
//! A source yields chunks of length-delimited `InvalidationEvent` frames; the
//! [`pump`](crate::ApprovalSink::pump) feeds each chunk to the guest's
//! `ingest-frames` (many frames per call). The host never decodes the
//! protobuf itself: untrusted bytes are parsed inside the sandbox.
//!
//! * [`ReaderSource`]: any `AsyncRead` of length-delimited frames (stdin, a
//!   file, a socket); read once, never reopened.
//! * The gateway's gRPC stream is `approval_grpc::GrpcSource`, the NATS log
//!   `approval_nats::NatsSource`; both give durable waits: a
//!   [`VerdictLookup`] the pump runs for each new wait, so a verdict stored
//!   before the wait began (or dropped from the replay retention since)
//!   still settles it.
//!
//! Files: `mod.rs` the traits and types every source shares; `pump.rs` the
//! [`Pump`]; `lookups.rs` the pump's durable lookups; `reader.rs`
//! [`ReaderSource`].

mod lookups;
mod pump;
mod reader;

pub use lookups::{CONCURRENT_LOOKUPS, LOOKUP_TIMEOUT, unsequenced_frame};
pub use pump::{MAX_BACKOFF, MIN_BACKOFF, MIN_IDLE_TIMEOUT, Pump, PumpConfig, PumpStats};
pub use reader::ReaderSource;
#[cfg(test)]
pub(crate) use {pump::CHUNK_ATTEMPTS, reader::CHUNK as READER_CHUNK};

use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// A stream of chunks of length-delimited frames.
pub type Chunks = BoxStream<'static, Result<Chunk, SourceError>>;

/// One chunk of a source's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Length-delimited `InvalidationEvent` frames (one may straddle chunks).
    pub frames: Vec<u8>,
    /// Messages the source skipped before this chunk because they were over
    /// [`OpenRequest::max_frame_bytes`] (counted in `PumpStats` and the
    /// sink's `Stats::oversized_frames`).
    pub oversized: u64,
}

impl From<Vec<u8>> for Chunk {
    fn from(frames: Vec<u8>) -> Self {
        Chunk {
            frames,
            oversized: 0,
        }
    }
}

/// What the pump asks of a source when it (re)opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRequest {
    /// Carry events after this sequence number (0: from the start of what
    /// the gateway retains) ...
    pub last_seq: u64,
    /// ... of this log (0: unknown). A gateway with another log replays its
    /// retention from the start (S16).
    pub log_id: u64,
    /// The sink's frame limit: a source that sees whole messages skips (and
    /// counts) larger ones instead of sending them to the guest, which would
    /// reject them; its transport must accept at least this much.
    pub max_frame_bytes: u32,
    /// How long opening may take, and how long a connection may stay
    /// unanswered, before the source gives it up (`PumpConfig::idle_timeout`).
    pub idle_timeout: std::time::Duration,
    /// How long the sink remembers a verdict (`SinkConfig::verdict_cache_ttl`):
    /// a source with no resume point in its log reads back this far.
    pub verdict_ttl: std::time::Duration,
}

/// Why a source could not open or went away.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Connecting to the gateway failed.
    #[error("connecting to {endpoint}: {message}")]
    Connect {
        /// The gateway's URL.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The gateway answered with a gRPC error.
    #[error("gateway: {0}")]
    Status(String),
    /// The gateway refused this client (`UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`) or the TLS handshake failed (a certificate the
    /// client does not trust, or the gateway wants a client certificate):
    /// retrying cannot help until the configuration changes. The pump still
    /// retries, at its backoff, and counts these in `PumpStats::refused`.
    #[error("refused by {endpoint}: {message}")]
    Refused {
        /// The gateway's URL.
        endpoint: String,
        /// What was refused.
        message: String,
    },
    /// Reading bytes failed.
    #[error("reading frames: {0}")]
    Io(#[from] std::io::Error),
    /// A one-shot source was already consumed.
    #[error("this source cannot be reopened")]
    Exhausted,
}

/// Something that yields the gateway's frames.
pub trait EventSource: Send + 'static {
    /// Opens the stream so that it carries events after `request.last_seq`.
    fn open(&mut self, request: OpenRequest) -> BoxFuture<'_, Result<Chunks, SourceError>>;

    /// Whether the pump should reopen the source after it ends or fails.
    /// Default: yes (a network source resumes from the resume point).
    fn reopens(&self) -> bool {
        true
    }

    /// A short name for logs.
    fn describe(&self) -> String;

    /// How the pump looks up a verdict stored before a wait began (durable
    /// waits), if this source's log can say: while the pump runs, each new
    /// pending wait of its sink is looked up. Default: none.
    fn lookup(&self) -> Option<std::sync::Arc<dyn VerdictLookup>> {
        None
    }
}

/// `open`, given up after `idle` with [`SourceError::Connect`] naming
/// `endpoint`: a peer that accepts a connection and never answers must not
/// hold a pump for ever (`OpenRequest::idle_timeout`).
pub async fn open_within<T>(
    idle: std::time::Duration,
    endpoint: &str,
    open: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    tokio::time::timeout(idle, open).await.unwrap_or_else(|_| {
        Err(SourceError::Connect {
            endpoint: endpoint.to_owned(),
            message: format!("no answer within {idle:?}"),
        })
    })
}

/// Finds the verdict a log stores for a request id (durable waits).
pub trait VerdictLookup: Send + Sync + 'static {
    /// One encoded `InvalidationEvent` (no length prefix) carrying the
    /// verdict stored for `request_id`, unsequenced (`seq` 0, so applying it
    /// never moves the resume point); `None` if nothing is stored.
    fn lookup(&self, request_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, SourceError>>;
}
