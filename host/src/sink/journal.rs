//! [`VerdictJournal`]: the host's copy of the verdicts the guest remembers,
//! so a fresh instance after a trap remembers them too (S18).
//!
//! # Invariants
//!
//! * Entries are the guest's journal entries (`approval_guest::journal`),
//!   kept as the guest wrote them, oldest first; the host never needs to
//!   understand more than their header.
//! * Each call's journal is kept whole, as the guest returned it (moved,
//!   not copied per entry): the ingest path pays one header walk per call.
//! * Bounded like the guest's memory, a call's worth coarser: a chunk goes
//!   once all its entries are past `verdict_cache_ttl`, or once the newer
//!   chunks alone hold `verdict_cache_capacity` entries, so it holds at
//!   most the capacity plus one call's entries.
//! * The guest re-checks everything it restores (TTL, capacity, ids); bytes
//!   a faulty guest wrote end the walk, never panic the host.

use approval_guest::journal;
use std::collections::VecDeque;

/// One call's journal, kept whole (moved, never copied per entry).
#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    entries: usize,
    /// When its newest entry was remembered.
    newest: u64,
}

/// Verdict journal entries, bounded by count and age.
#[derive(Debug, Default)]
pub(crate) struct VerdictJournal {
    chunks: VecDeque<Chunk>,
    entries: usize,
    capacity: usize,
    ttl_ns: u64,
}

impl VerdictJournal {
    /// An empty journal with the memory's bounds.
    pub(crate) fn new(capacity: u32, ttl_ns: u64) -> Self {
        VerdictJournal {
            capacity: capacity as usize,
            ttl_ns,
            ..Self::default()
        }
    }

    /// Keeps one call's journal; drops the oldest chunks once everything in
    /// them is past the bounds at `now`.
    pub(crate) fn extend(&mut self, bytes: Vec<u8>, now: u64) {
        if bytes.is_empty() || self.capacity == 0 {
            return;
        }
        let (entries, newest) = journal::entries(&bytes).fold((0usize, 0u64), |(n, newest), e| {
            (n + 1, newest.max(e.stored_at))
        });
        if entries == 0 {
            return;
        }
        self.entries += entries;
        self.chunks.push_back(Chunk {
            bytes,
            entries,
            newest,
        });
        while let Some(oldest) = self.chunks.front() {
            let expired = now.saturating_sub(oldest.newest) > self.ttl_ns;
            let beyond_capacity = self.entries - oldest.entries >= self.capacity;
            if !(expired || beyond_capacity) {
                break;
            }
            self.entries -= oldest.entries;
            self.chunks.pop_front();
        }
    }

    /// Every entry as one journal, oldest first, for a fresh instance (which
    /// applies the bounds exactly again).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|c| c.bytes.iter().copied())
            .collect()
    }

    /// Entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
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
        j.extend(bytes, 6);
        assert_eq!(j.len(), 3, "one chunk: kept whole");
        let mut next = Vec::new();
        journal::append(&mut next, "req-4", Verdict::Denied, 7);
        journal::append(&mut next, "req-5", Verdict::Denied, 7);
        j.extend(next, 7);
        assert_eq!(j.len(), 2, "the newer chunk holds the capacity");
        let ids: Vec<_> = journal::entries(&j.bytes())
            .map(|e| e.id.to_string())
            .collect();
        assert_eq!(ids, ["req-4", "req-5"]);
        let mut late = Vec::new();
        journal::append(&mut late, "req-6", Verdict::Approved, 100);
        j.extend(late, 100);
        assert_eq!(j.len(), 1, "the old chunk is past the TTL");
        j.extend(vec![1, 2, 3], 100);
        assert_eq!(j.len(), 1, "garbage adds nothing");
    }
}
