//! [`DeadlineQueue`]: the pending waiters' deadlines, earliest first, with
//! lazy deletion (tarpc keeps its `DelayQueue` apart from the in-flight map
//! in the same way).
//!
//! # Invariants
//!
//! * Every pending waiter has an entry `(deadline, token)`. A waiter that
//!   finishes early (verdict, cancel, its own timeout) leaves its entry
//!   behind and the owner calls [`DeadlineQueue::retire`]; the entry is
//!   *stale* from then on.
//! * Whether an entry is live is the owner's to say (a `live(token,
//!   deadline)` predicate: tokens may be reused with another deadline), and
//!   stale entries are skipped wherever the queue is read.
//! * Stale entries are dropped (by the owner's [`DeadlineQueue::compact`]
//!   or [`DeadlineQueue::rebuild`]) once `retire` says they outnumber the
//!   live ones, so memory stays proportional to pending waiters however
//!   many finish early.

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

/// Fewer stale entries than this are never worth a rebuild.
const COMPACT_MIN_STALE: usize = 64;

/// A min-heap of `(deadline, token)` with lazy deletion.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Entries whose waiter finished early (an upper bound: stale entries
    /// popped while reading are subtracted as they go).
    stale: usize,
}

impl DeadlineQueue {
    /// Adds a pending waiter's deadline.
    pub fn push(&mut self, deadline: u64, token: u64) {
        self.heap.push(Reverse((deadline, token)));
    }

    /// Makes room for `n` more entries.
    pub fn reserve(&mut self, n: usize) {
        self.heap.reserve(n);
    }

    /// `n` waiters finished before their deadline: their entries are stale.
    /// Says whether stale entries now outnumber the `live_count` pending
    /// waiters, so the owner should [`DeadlineQueue::compact`] or
    /// [`DeadlineQueue::rebuild`] the queue.
    pub fn retire(&mut self, n: usize, live_count: usize) -> bool {
        self.stale = self.stale.saturating_add(n);
        self.stale > COMPACT_MIN_STALE && self.stale > live_count
    }

    /// Drops every stale entry, asking `live` of each entry.
    pub fn compact(&mut self, live: impl Fn(u64, u64) -> bool) {
        self.heap.retain(|Reverse((d, t))| live(*t, *d));
        self.stale = 0;
    }

    /// Replaces every entry by `pending`, the owner's pending waiters as
    /// `(deadline, token)`: the same live entries as [`DeadlineQueue::compact`]
    /// keeps, read in the owner's order instead of asked for one by one
    /// (a random lookup per entry). Reuses the heap's buffer.
    pub fn rebuild(&mut self, pending: impl IntoIterator<Item = (u64, u64)>) {
        let mut entries = core::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(pending.into_iter().map(Reverse));
        self.heap = BinaryHeap::from(entries);
        self.stale = 0;
    }

    /// Removes and returns the token of the earliest live entry due at
    /// `now` (deadline `<= now`), skipping stale entries.
    pub fn pop_due(&mut self, now: u64, live: impl Fn(u64, u64) -> bool) -> Option<u64> {
        let deadline = self.next(&live)?;
        if deadline > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, token))| token)
    }

    /// The earliest live deadline; drops the stale entries in front of it.
    pub fn next(&mut self, live: impl Fn(u64, u64) -> bool) -> Option<u64> {
        while let Some(&Reverse((deadline, token))) = self.heap.peek() {
            if live(token, deadline) {
                return Some(deadline);
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
        None
    }

    /// Entries held, live and stale.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let mut q = DeadlineQueue::default();
        for t in 0..200u64 {
            q.push(t, t);
        }
        // Only odd tokens stay live.
        let live = |t: u64, _d: u64| t % 2 == 1;
        assert!(!q.retire(100, 100), "not yet more stale than live");
        assert!(q.retire(1, 99), "stale outnumber live");
        q.compact(live);
        assert_eq!(q.len(), 100, "compacted");
        assert_eq!(q.next(live), Some(1));
        assert_eq!(q.pop_due(0, live), None, "nothing due at 0");
        assert_eq!(q.pop_due(3, live), Some(1));
        assert_eq!(q.pop_due(3, live), Some(3));
        assert_eq!(q.pop_due(3, live), None);
    }

    #[test]
    fn a_rebuild_holds_exactly_the_pending_entries() {
        let mut q = DeadlineQueue::default();
        for t in 0..200u64 {
            q.push(1000 - t, t);
        }
        assert!(q.retire(150, 50));
        let pending: alloc::vec::Vec<(u64, u64)> = (150..200u64).map(|t| (1000 - t, t)).collect();
        q.rebuild(pending.iter().copied());
        assert_eq!(q.len(), 50);
        assert!(!q.retire(1, 49), "the stale count starts again");
        let live = |t: u64, _d: u64| t >= 150;
        let order: alloc::vec::Vec<u64> = core::iter::from_fn(|| q.pop_due(1000, live)).collect();
        assert_eq!(
            order,
            (150..200u64).rev().collect::<alloc::vec::Vec<_>>(),
            "earliest first"
        );
    }
}
