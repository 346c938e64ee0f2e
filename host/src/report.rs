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
    /// Frames rejected: malformed, conflicting or unauthenticated (each
    /// counted in stats under its own counter).
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

impl IngestReport {
    /// Most errors one report lists (as the guest's own reports).
    pub const MAX_ERRORS: usize = approval_guest::frames::MAX_REPORTED_ERRORS;

    /// Adds what the next chunk of the same stream did: counts add up, the
    /// errors list stays bounded, the resume point is the later one's.
    pub fn absorb(&mut self, next: IngestReport) {
        self.completed = self.completed.saturating_add(next.completed);
        self.events = self.events.saturating_add(next.events);
        self.duplicates = self.duplicates.saturating_add(next.duplicates);
        self.rejected = self.rejected.saturating_add(next.rejected);
        let room = Self::MAX_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(next.errors.into_iter().take(room));
        self.fatal = self.fatal.take().or(next.fatal);
        self.last_seq = next.last_seq;
        self.log_id = next.log_id;
    }
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
