//! Error types of the host API.

use std::path::PathBuf;
use std::sync::Arc;

/// What caused a [`HostError`], its chain kept (`source()`); shared, so a
/// failure cached once per process (the embedded component's compile) is
/// the same error every time it is returned.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The cause of a wasmtime (or `wit-component`) error, with its whole
/// chain.
pub(crate) fn cause(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Cause {
    Arc::from(e.into())
}

/// Why one sink operation failed. No variant affects other waiters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The request id is longer than the limit (its length in bytes).
    #[error("request id is {0} bytes, over the limit")]
    RequestIdTooLong(u32),
    /// The request id is empty.
    #[error("request id is empty")]
    RequestIdEmpty,
    /// The sink already holds its maximum of pending waiters (the limit).
    #[error("too many pending waiters (limit {0})")]
    TooManyWaiters(u32),
    /// A frame's length prefix is over the limit (the announced length).
    #[error("frame of {0} bytes is over the limit")]
    FrameTooLarge(u32),
    /// Bytes that are not a valid `InvalidationEvent` frame.
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// A decision that is not a verdict (`UNSPECIFIED`, `PENDING`, unknown).
    #[error("not a verdict: decision value {0}")]
    UnknownDecision(i32),
    /// The guest saw this waiter ticket twice (a host bug; never user input).
    #[error("waiter ticket {0} is already pending")]
    DuplicateWaiter(u64),
    /// The other verdict is already final for this request id (S15): this
    /// one was ignored (counted in `Stats::conflicts`).
    #[error("the other verdict is already final for this request id")]
    ConflictingVerdict,
    /// Trusted keys are configured and this verdict is not signed by one
    /// (S17): ignored, counted in `Stats::unauthenticated`. `deliver` always
    /// gets `Unsigned` then: it cannot carry a signature; push signed
    /// frames instead.
    #[error("verdict not signed by a trusted reviewer key: {0:?}")]
    Unauthenticated(crate::trust::AuthFailure),
    /// A configuration the guest refused.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The guest trapped or broke a limit during this call; the sink reset
    /// its instance (outstanding waits resolved as `Reset`).
    #[error("the guest failed and was reset: {0}")]
    GuestFault(String),
    /// The guest keeps failing (more resets than `SinkConfig::crash_loop_resets`
    /// within `crash_loop_window`): the sink refuses guest calls for a while
    /// instead of re-instantiating in a loop. Waits fall back to Pending;
    /// a pump retries with its backoff.
    #[error("the guest is crash-looping; calls refused for another {0:?}")]
    CrashLoop(std::time::Duration),
}

/// Why a wait ended without an outcome: only what a wait can meet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The id is over `max_request_id_bytes` (its length): refused before
    /// it reached the guest.
    #[error("cannot wait on a request id of {0} bytes (over max_request_id_bytes)")]
    RequestIdTooLong(u32),
    /// The id is empty: no gateway issues one, so nothing could answer.
    #[error("cannot wait on an empty request id")]
    RequestIdEmpty,
    /// `max_waiters` waits are pending already (the limit): this one falls
    /// back at once instead of growing the table.
    #[error("cannot wait: {0} waits are pending already (max_waiters)")]
    TooManyWaiters(u32),
    /// The guest is crash-looping (S12): the registration was refused for
    /// a while.
    #[error("the guest is crash-looping; calls refused for another {0:?}")]
    CrashLoop(std::time::Duration),
    /// The guest refused the registration for a reason no wait should meet
    /// (a host or guest bug, never user input: a reused waiter ticket).
    #[error("the registration was refused: {0}")]
    Refused(SinkError),
}

impl From<SinkError> for WaitError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::RequestIdTooLong(n) => WaitError::RequestIdTooLong(n),
            SinkError::RequestIdEmpty => WaitError::RequestIdEmpty,
            SinkError::TooManyWaiters(n) => WaitError::TooManyWaiters(n),
            SinkError::CrashLoop(left) => WaitError::CrashLoop(left),
            other => WaitError::Refused(other),
        }
    }
}

/// Why a sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component file could not be read.
    #[error("reading component {path}: {source}")]
    ComponentFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The engine could not be created.
    #[error("creating the wasmtime engine")]
    Engine(#[source] Cause),
    /// The bytes are not a component of the `approval-registry` world.
    #[error("compiling the component")]
    Compile(#[source] Cause),
    /// The embedded component failed to compile or link (a build defect:
    /// the test suite loads it); the same error every time it is asked for.
    #[error("loading the embedded component")]
    Embedded(#[source] Cause),
    /// Instantiation failed (imports mismatch, start trap, limits).
    #[error("instantiating the component")]
    Instantiate(#[source] Cause),
    /// The guest refused the configuration or the trusted keys (the
    /// refusal is the `source()`).
    #[error("configuring the sink")]
    Config(#[source] SinkError),
    /// A host-side setting is out of range (S19).
    #[error("SinkConfig::{field} {reason}")]
    InvalidConfig {
        /// The `SinkConfig` field.
        field: &'static str,
        /// The accepted range.
        reason: &'static str,
    },
}
