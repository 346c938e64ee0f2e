//! Counters of a sink: the guest's own, plus what only the host sees.

/// A snapshot of one sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Waiters pending in the guest.
    pub waiters: u32,
    /// Distinct request ids with a pending waiter.
    pub ids: u32,
    /// Early verdicts cached.
    pub cached_verdicts: u32,
    /// Waiters resolved by a verdict.
    pub delivered: u64,
    /// Waiters that timed out (reported as `Pending`).
    pub timed_out: u64,
    /// Waiters cancelled (dropped futures).
    pub cancelled: u64,
    /// Waits settled at once from the early-verdict cache.
    pub early_hits: u64,
    /// Cached verdicts dropped unused (capacity or TTL).
    pub evictions: u64,
    /// Frames or events rejected as malformed.
    pub malformed: u64,
    /// Sequenced events ignored as duplicates.
    pub duplicates: u64,
    /// Highest event sequence number applied.
    pub last_seq: u64,
    /// Policy invalidations forwarded to listeners.
    pub invalidations: u64,
    /// Times the guest instance was replaced after a fault (host-side).
    pub resets: u64,
    /// Guest traps seen (host-side).
    pub traps: u64,
}

impl Stats {
    /// The guest's counters, with the host's own added.
    pub(crate) fn from_guest(s: crate::bindings::SinkStats, resets: u64, traps: u64) -> Self {
        Stats {
            waiters: s.waiters,
            ids: s.ids,
            cached_verdicts: s.cached_verdicts,
            delivered: s.delivered,
            timed_out: s.timed_out,
            cancelled: s.cancelled,
            early_hits: s.early_hits,
            evictions: s.evictions,
            malformed: s.malformed,
            duplicates: s.duplicates,
            last_seq: s.last_seq,
            invalidations: s.invalidations,
            resets,
            traps,
        }
    }
}
