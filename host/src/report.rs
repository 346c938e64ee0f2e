//! [`IngestReport`]: what one chunk of a frame stream did, as a host type
//! (the adapter converts the guest's WIT record into it).

use crate::error::SinkError;

/// What one `ingest_bytes` (or `push_frame`) call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Waiters finished by the ingested events.
    pub completed: u32,
    /// Events applied (verdicts and invalidations).
    pub events: u32,
    /// Sequenced events ignored as already seen (S9).
    pub duplicates: u32,
    /// Frames skipped as malformed (counted in stats too).
    pub rejected: u32,
    /// The first few per-frame errors, in stream order.
    pub errors: Vec<SinkError>,
    /// Set when framing was lost (oversized or corrupt length prefix): the
    /// buffered bytes were dropped and the source must be reopened.
    pub fatal: Option<SinkError>,
    /// Highest sequence number applied so far (the resume point) ...
    pub last_seq: u64,
    /// ... in the window of this log (0: unknown).
    pub log_id: u64,
}

/// Where a sink's stream stands: the last sequence number applied, in the
/// window of which log (S9, S16). Sources resume from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// The log that assigned `last_seq` (0: unknown).
    pub log_id: u64,
    /// The highest sequence number applied from that log.
    pub last_seq: u64,
}
