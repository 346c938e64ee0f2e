//! The log's bounds ([`LogLimits`]), what it reports ([`LogStats`]) and why
//! a publication is refused ([`PublishError`]).

use crate::store::StoreError;
use approval_guest::config::Config as GuestConfig;
use approval_proto::Decision;
use std::time::Duration;

/// Most request ids one lookup may name.
pub const MAX_LOOKUP_IDS: usize = 256;

/// The shortest [`LogLimits::verdict_ttl`]: the longest wait a sink
/// accepts by default (`max_timeout`), so a verdict stays final for at
/// least as long as anyone may still be waiting on it.
pub const MIN_VERDICT_TTL: Duration = Duration::from_nanos(GuestConfig::DEFAULT.max_timeout_ns);

/// Bounds of a [`GatewayLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most events kept for replay (at least 1). Default 100,000.
    pub retention: usize,
    /// Most encoded bytes kept for replay; the oldest events go first (at
    /// least 1; the newest event is always kept). Default 256 MiB.
    pub retain_bytes: usize,
    /// Most open subscriptions; more are refused with `RESOURCE_EXHAUSTED`
    /// (at least 1). Default 10,000.
    pub max_subscribers: usize,
    /// Most request ids with a recorded verdict: a new verdict past it is
    /// refused (`RESOURCE_EXHAUSTED`), never admitted by forgetting one
    /// (at least 1). Default 1,000,000.
    pub max_verdicts: u64,
    /// How long a recorded verdict stays final (at least
    /// [`MIN_VERDICT_TTL`]). Default 7 days.
    pub verdict_ttl: Duration,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            retention: 100_000,
            retain_bytes: 256 << 20,
            max_subscribers: 10_000,
            max_verdicts: 1_000_000,
            verdict_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl LogLimits {
    /// The default limits with this replay retention.
    pub fn retaining(retention: usize) -> Self {
        LogLimits {
            retention,
            ..LogLimits::default()
        }
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let zero = [
            ("retention", self.retention == 0),
            ("retain_bytes", self.retain_bytes == 0),
            ("max_subscribers", self.max_subscribers == 0),
            ("max_verdicts", self.max_verdicts == 0),
        ];
        if let Some((field, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(StoreError::Limits(format!("{field} must be at least 1")));
        }
        if self.verdict_ttl < MIN_VERDICT_TTL {
            return Err(StoreError::Limits(format!(
                "verdict_ttl must be at least {MIN_VERDICT_TTL:?}, the longest wait a sink accepts"
            )));
        }
        Ok(())
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
    /// Request ids with a recorded verdict (expired ones until swept).
    pub verdicts: u64,
    /// Verdicts refused because the other decision stands.
    pub conflicts: u64,
    /// Verdicts refused because the record is full.
    pub refused_verdicts: u64,
    /// Transactions committed (group commit: fewer than publications
    /// under load).
    pub commits: u64,
    /// Subscriptions open now.
    pub subscribers: usize,
    /// Subscriptions refused (over `max_subscribers`).
    pub refused_subscribers: u64,
}

/// Why an event was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Another verdict stands for the request id (first wins): the other
    /// decision, or the same one signed by another key (or unsigned).
    #[error("{} already stands for this request (seq {seq}, {})", decision_name(*.decision), signer(.key_id))]
    AlreadyDecided {
        /// The standing decision (wire value).
        decision: i32,
        /// The key that signed it; empty: unsigned.
        key_id: String,
        /// The seq of the event that published it.
        seq: u64,
    },
    /// The verdict record is full.
    #[error("the gateway records {max} verdicts already; retry once older ones expire")]
    Full {
        /// [`LogLimits::max_verdicts`].
        max: u64,
    },
    /// The log could not commit (the writer's error).
    #[error("the event log failed: {0}")]
    Store(String),
}

/// `key K` or `unsigned`, for messages.
pub(crate) fn signer(key_id: &str) -> String {
    if key_id.is_empty() {
        "unsigned".into()
    } else {
        format!("key {key_id}")
    }
}

/// The wire name of a decision value.
pub(crate) fn decision_name(decision: i32) -> &'static str {
    Decision::try_from(decision).map_or("DECISION_UNSPECIFIED", |d| d.as_str_name())
}
