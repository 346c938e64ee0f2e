//! Event sources: where the gateway's byte stream comes from, and the pump
//! that feeds it into a sink.
//!
//! A source yields chunks of length-delimited `InvalidationEvent` frames; the
//! [`pump`](crate::ApprovalSink::pump) feeds each chunk to the guest's
//! `ingest-frames` (many frames per call). The host never decodes the
//! protobuf itself: untrusted bytes are parsed inside the sandbox.
//!
//! * [`GrpcSource`]: `InvalidationService.Subscribe` over tonic, resumed from
//!   the sink's `last_seq` on every (re)connect.
//! * [`ReaderSource`]: any `AsyncRead` of length-delimited frames (stdin, a
//!   file, a socket); read once, never reopened.

mod grpc;
pub(crate) mod pump;
mod reader;

pub use grpc::GrpcSource;
pub use pump::{Pump, PumpConfig, PumpStats};
pub use reader::ReaderSource;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// A stream of chunks of length-delimited frames.
pub type Chunks = BoxStream<'static, Result<Vec<u8>, SourceError>>;

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
    /// Reading bytes failed.
    #[error("reading frames: {0}")]
    Io(#[from] std::io::Error),
    /// A one-shot source was already consumed.
    #[error("this source cannot be reopened")]
    Exhausted,
}

/// Something that yields the gateway's frames.
pub trait EventSource: Send + 'static {
    /// Opens the stream so that it carries events after `last_seq` (0: from
    /// the start of what the gateway retains).
    fn open(&mut self, last_seq: u64) -> BoxFuture<'_, Result<Chunks, SourceError>>;

    /// Whether the pump should reopen the source after it ends or fails.
    fn reopens(&self) -> bool;

    /// A short name for logs.
    fn describe(&self) -> String;
}
