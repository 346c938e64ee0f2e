//! [`VerdictJournal`]: the host's copy of the verdicts the guest remembers,
//! so a fresh instance after a trap remembers them too (S18).
//!
//! # Invariants
//!
//! * Entries are in the guest's journal format (`approval_guest::journal`,
//!   SPEC.md §5.6): the guest's own, kept as it wrote them, and the host's
//!   for the verdicts it delivered, written with the guest crate's
//!   `journal::append`; oldest first. The host never reads more than their
//!   header.
//! * Each call's journal is kept whole, as the guest returned it (moved,
//!   not copied per entry): the ingest path pays one walk of the entries'
//!   headers per call (not of their ids: UTF-8 checks were most of it).
//! * Small journals (a `deliver`'s one entry, a frame or two) join the
//!   newest chunk while it holds fewer than [`TAIL_ENTRIES`] entries, so a
//!   stream of single verdicts costs no allocation and no chunk each.
//! * Bounded like the guest's memory, a chunk coarser: a chunk goes once
//!   all its entries are past `verdict_cache_ttl`, or once the newer chunks
//!   alone hold `verdict_cache_capacity` entries, so it holds at most the
//!   capacity plus one chunk's entries.
//! * The guest re-checks everything it restores (TTL, capacity, ids); bytes
//!   a faulty guest wrote end the walk, never panic the host.

use approval_guest::journal;
use approval_guest::verdict::Verdict;
use std::collections::VecDeque;

/// A small journal joins the newest chunk while that holds fewer entries
/// than this.
pub(crate) const TAIL_ENTRIES: usize = 256;

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
        // Headers only: the ids are the fresh guest's to check, if ever.
        let (entries, newest) = journal::stored_times(&bytes)
            .fold((0usize, 0u64), |(n, newest), at| (n + 1, newest.max(at)));
        if entries == 0 {
            return;
        }
        self.entries += entries;
        match self.chunks.back_mut() {
            Some(tail) if tail.entries + entries <= TAIL_ENTRIES => {
                tail.bytes.extend_from_slice(&bytes);
                tail.entries += entries;
                tail.newest = tail.newest.max(newest);
            }
            _ => self.chunks.push_back(Chunk {
                bytes,
                entries,
                newest,
            }),
        }
        self.trim(now);
    }

    /// Keeps one verdict the host delivered itself (`deliver`: the guest's
    /// `resolve` returns no journal), written with the guest's own
    /// `journal::append`, without a buffer of its own.
    pub(crate) fn push(&mut self, id: &str, verdict: Verdict, now: u64) {
        if self.capacity == 0 {
            return;
        }
        match self.chunks.back_mut() {
            Some(tail) if tail.entries < TAIL_ENTRIES => {
                journal::append(&mut tail.bytes, id, verdict, now);
                tail.entries += 1;
                tail.newest = tail.newest.max(now);
            }
            _ => {
                let mut bytes = Vec::new();
                journal::append(&mut bytes, id, verdict, now);
                self.chunks.push_back(Chunk {
                    bytes,
                    entries: 1,
                    newest: now,
                });
            }
        }
        self.entries += 1;
        self.trim(now);
    }

    /// Drops the oldest chunks once everything in them is past the bounds.
    fn trim(&mut self, now: u64) {
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
        // Over the tail size, so the next journal starts a chunk of its own.
        let filler = |at| {
            let mut b = Vec::new();
            for i in 0..TAIL_ENTRIES {
                journal::append(&mut b, &format!("fill-{i}"), Verdict::Approved, at);
            }
            b
        };
        j.extend(filler(0), 0);
        j.extend(bytes, 6);
        assert_eq!(j.len(), 3, "one chunk: kept whole");
        let mut next = filler(7);
        journal::append(&mut next, "req-4", Verdict::Denied, 7);
        journal::append(&mut next, "req-5", Verdict::Denied, 7);
        j.extend(next, 7);
        assert_eq!(
            j.len(),
            TAIL_ENTRIES + 2,
            "the newer chunk holds the capacity"
        );
        let ids: Vec<_> = journal::entries(&j.bytes())
            .map(|e| e.id.to_string())
            .skip(TAIL_ENTRIES)
            .collect();
        assert_eq!(ids, ["req-4", "req-5"]);
        let mut late = Vec::new();
        journal::append(&mut late, "req-6", Verdict::Approved, 100);
        j.extend(late, 100);
        assert_eq!(j.len(), 1, "the old chunk is past the TTL");
        j.extend(vec![1, 2, 3], 100);
        assert_eq!(j.len(), 1, "garbage adds nothing");
    }

    /// `tests/vectors/journal.json`: the host keeps the guest's entries as
    /// they are and reads their headers.
    #[test]
    fn the_journal_vectors_are_kept_whole() {
        use crate::golden;
        let vectors = golden::read("journal.json");
        let bytes = golden::unhex(vectors["bytes"].as_str().unwrap());
        let entries = vectors["entries"].as_array().unwrap();
        let times: Vec<u64> = journal::stored_times(&bytes).collect();
        let pinned: Vec<u64> = entries
            .iter()
            .map(|e| e["stored_at"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(times, pinned);
        let mut j = VerdictJournal::new(10_000, u64::MAX);
        j.extend(bytes.clone(), u64::MAX);
        assert_eq!(j.bytes(), bytes);
        assert_eq!(j.len(), entries.len());
        assert_eq!(vectors["header_bytes"], journal::HEADER_BYTES);
    }

    #[test]
    fn single_verdicts_share_the_tail_chunk() {
        let mut j = VerdictJournal::new(10_000, 1_000);
        for i in 0..3 * TAIL_ENTRIES {
            j.push(&format!("req-{i}"), Verdict::Denied, 5);
        }
        assert_eq!(j.chunks.len(), 3, "one chunk per {TAIL_ENTRIES} verdicts");
        assert_eq!(j.len(), 3 * TAIL_ENTRIES);
        let first = journal::entries(&j.bytes())
            .next()
            .map(|e| e.id.to_string());
        assert_eq!(first.as_deref(), Some("req-0"), "oldest first");
        // Past the TTL, whole chunks go.
        j.push("late", Verdict::Approved, 2_000);
        assert_eq!(j.len(), 1);
    }
}
