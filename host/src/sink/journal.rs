//! [`VerdictJournal`]: the host's copy of the verdicts the guest remembers,
//! so a fresh instance after a trap remembers them too (S18).
//!
//! # Invariants
//!
//! * Entries are the guest's journal entries (`approval_guest::journal`),
//!   kept as the guest wrote them, oldest first; the host never needs to
//!   understand more than their header.
//! * Bounded like the guest's memory: at most `verdict_cache_capacity`
//!   entries, none older than `verdict_cache_ttl` (dropped when new ones
//!   arrive), so it costs at most what the guest's memory holds.
//! * The guest re-checks everything it restores (TTL, capacity, ids); bytes
//!   a faulty guest wrote end the walk, never panic the host.

use approval_guest::journal;
use std::collections::VecDeque;

/// Verdict journal entries, bounded by count and age.
#[derive(Debug, Default)]
pub(crate) struct VerdictJournal {
    entries: VecDeque<(u64, Vec<u8>)>,
    capacity: usize,
    ttl_ns: u64,
}

impl VerdictJournal {
    /// An empty journal with the memory's bounds.
    pub(crate) fn new(capacity: u32, ttl_ns: u64) -> Self {
        VerdictJournal {
            entries: VecDeque::new(),
            capacity: capacity as usize,
            ttl_ns,
        }
    }

    /// Keeps the entries of one call's journal; drops what is past the
    /// bounds at `now`.
    pub(crate) fn extend(&mut self, bytes: &[u8], now: u64) {
        if bytes.is_empty() || self.capacity == 0 {
            return;
        }
        for entry in journal::entries(bytes) {
            self.entries
                .push_back((entry.stored_at, entry.bytes.to_vec()));
        }
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > self.ttl_ns)
        {
            self.entries.pop_front();
        }
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
    }

    /// Every entry as one journal, oldest first, for a fresh instance.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.entries
            .iter()
            .flat_map(|(_, e)| e.iter().copied())
            .collect()
    }

    /// Entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approval_guest::verdict::Verdict;

    #[test]
    fn keeps_the_newest_within_capacity_and_ttl() {
        let mut j = VerdictJournal::new(2, 10);
        let mut bytes = Vec::new();
        for (i, at) in [(1, 0), (2, 5), (3, 6)] {
            journal::append(&mut bytes, &format!("req-{i}"), Verdict::Approved, at);
        }
        j.extend(&bytes, 6);
        assert_eq!(j.len(), 2, "capacity");
        let ids: Vec<_> = journal::entries(&j.bytes())
            .map(|e| e.id.to_string())
            .collect();
        assert_eq!(ids, ["req-2", "req-3"]);
        j.extend(&[], 100);
        assert_eq!(j.len(), 2, "nothing new: nothing swept");
        let mut more = Vec::new();
        journal::append(&mut more, "req-4", Verdict::Denied, 100);
        j.extend(&more, 100);
        assert_eq!(j.len(), 1, "the old ones are past the TTL");
        j.extend(&[1, 2, 3], 100);
        assert_eq!(j.len(), 1, "garbage adds nothing");
    }
}
