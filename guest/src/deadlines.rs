//! [`DeadlineQueue`]: the pending waiters' deadlines, earliest first, with
//! lazy deletion (tarpc keeps its `DelayQueue` apart from the in-flight map
//! in the same way).
//!
//! # Invariants
//!
//! * Every pending waiter has an entry `(deadline, ticket)`. A waiter that
//!   finishes early (verdict, cancel, its own timeout) leaves its entry
//!   behind and the owner calls [`DeadlineQueue::retire`]; the entry is
//!   *stale* from then on.
//! * Whether an entry is live is the owner's to say (a `live(ticket,
//!   deadline)` predicate: tickets may be reused with another deadline), and
//!   stale entries are skipped wherever the queue is read.
//! * Stale entries are dropped by [`DeadlineQueue::retire`] once they
//!   outnumber the live ones, so memory stays proportional to pending
//!   waiters however many finish early; how (a rebuild from the pending
//!   waiters or a compaction asking about each entry) is this file's
//!   policy, by the pending table's size.

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

/// Fewer stale entries than this are never worth a rebuild.
const COMPACT_MIN_STALE: usize = 64;

/// A rebuild reads the pending table whole: worth it while the table is at
/// most this many times the queue.
const REBUILD_SPREAD: usize = 4;

/// The owner's pending waiters, as the queue needs to know them.
pub trait Pending {
    /// How many are pending.
    fn count(&self) -> usize;
    /// The size of the table that holds them (what a rebuild reads).
    fn capacity(&self) -> usize;
    /// Each pending waiter as `(deadline, ticket)`.
    fn entries(&self) -> impl Iterator<Item = (u64, u64)>;
    /// Whether `(deadline, ticket)` is a pending waiter's deadline (tickets
    /// may be reused with another deadline).
    fn is_live(&self, ticket: u64, deadline: u64) -> bool;
}

/// A min-heap of `(deadline, ticket)` with lazy deletion.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Entries whose waiter finished early (an upper bound: stale entries
    /// popped while reading are subtracted as they go).
    stale: usize,
}

impl DeadlineQueue {
    /// Adds a pending waiter's deadline.
    pub fn push(&mut self, deadline: u64, ticket: u64) {
        self.heap.push(Reverse((deadline, ticket)));
    }

    /// Makes room for `n` more entries.
    pub fn reserve(&mut self, n: usize) {
        self.heap.reserve(n);
    }

    /// `n` waiters finished before their deadline: their entries are stale.
    /// Once stale entries outnumber the `pending` waiters, drops them all:
    /// by rebuilding from `pending`'s entries while its table is at most
    /// [`REBUILD_SPREAD`] times the queue (reading a table bucket by bucket
    /// streams through memory), else by asking `pending` about each entry
    /// (a random lookup, a cache miss, per entry: cheaper only when the
    /// table is much larger than the queue, as it never shrinks).
    pub fn retire(&mut self, n: usize, pending: &impl Pending) {
        self.stale = self.stale.saturating_add(n);
        if self.stale <= COMPACT_MIN_STALE || self.stale <= pending.count() {
            return;
        }
        if pending.capacity() <= REBUILD_SPREAD * self.heap.len() {
            self.rebuild(pending.entries());
        } else {
            self.compact(|t, d| pending.is_live(t, d));
        }
    }

    /// Drops every stale entry, asking `live` of each entry.
    fn compact(&mut self, live: impl Fn(u64, u64) -> bool) {
        self.heap.retain(|Reverse((d, t))| live(*t, *d));
        self.stale = 0;
    }

    /// Replaces every entry by `pending`, the owner's pending waiters as
    /// `(deadline, ticket)`: the same live entries as [`DeadlineQueue::compact`]
    /// keeps, read in the owner's order instead of asked for one by one
    /// (a random lookup per entry). Reuses the heap's buffer.
    fn rebuild(&mut self, pending: impl IntoIterator<Item = (u64, u64)>) {
        let mut entries = core::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(pending.into_iter().map(Reverse));
        self.heap = BinaryHeap::from(entries);
        self.stale = 0;
    }

    /// Removes and returns the ticket of the earliest live entry due at
    /// `now` (deadline `<= now`), skipping stale entries.
    pub fn pop_due(&mut self, now: u64, live: impl Fn(u64, u64) -> bool) -> Option<u64> {
        let deadline = self.next(&live)?;
        if deadline > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, ticket))| ticket)
    }

    /// The earliest live deadline; drops the stale entries in front of it.
    pub fn next(&mut self, live: impl Fn(u64, u64) -> bool) -> Option<u64> {
        while let Some(&Reverse((deadline, ticket))) = self.heap.peek() {
            if live(ticket, deadline) {
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
    use alloc::vec::Vec;

    /// Pending waiters for the tests: `(deadline, ticket)`s in a table of
    /// `capacity`.
    struct Table {
        pending: Vec<(u64, u64)>,
        capacity: usize,
    }

    impl Pending for Table {
        fn count(&self) -> usize {
            self.pending.len()
        }
        fn capacity(&self) -> usize {
            self.capacity
        }
        fn entries(&self) -> impl Iterator<Item = (u64, u64)> {
            self.pending.iter().copied()
        }
        fn is_live(&self, ticket: u64, deadline: u64) -> bool {
            self.pending.contains(&(deadline, ticket))
        }
    }

    #[test]
    fn stale_entries_are_skipped_and_compacted_in_a_large_table() {
        let mut q = DeadlineQueue::default();
        for t in 0..200u64 {
            q.push(t, t);
        }
        // Only odd tickets stay live; the table is far larger than the
        // queue, so the stale entries are compacted away one by one.
        let table = Table {
            pending: (0..200u64).filter(|t| t % 2 == 1).map(|t| (t, t)).collect(),
            capacity: 100_000,
        };
        q.retire(100, &table);
        assert_eq!(q.len(), 200, "not yet more stale than live");
        q.retire(1, &table);
        assert_eq!(q.len(), 100, "compacted");
        let live = |t: u64, d: u64| table.is_live(t, d);
        assert_eq!(q.next(live), Some(1));
        assert_eq!(q.pop_due(0, live), None, "nothing due at 0");
        assert_eq!(q.pop_due(3, live), Some(1));
        assert_eq!(q.pop_due(3, live), Some(3));
        assert_eq!(q.pop_due(3, live), None);
    }

    #[test]
    fn a_small_table_is_read_whole_into_exactly_the_pending_entries() {
        let mut q = DeadlineQueue::default();
        for t in 0..200u64 {
            q.push(1000 - t, t);
        }
        let table = Table {
            pending: (150..200u64).map(|t| (1000 - t, t)).collect(),
            capacity: 64,
        };
        q.retire(150, &table);
        assert_eq!(q.len(), 50, "rebuilt from the pending waiters");
        q.retire(1, &table);
        assert_eq!(q.len(), 50, "the stale count starts again");
        let live = |t: u64, d: u64| table.is_live(t, d);
        let order: Vec<u64> = core::iter::from_fn(|| q.pop_due(1000, live)).collect();
        assert_eq!(
            order,
            (150..200u64).rev().collect::<Vec<_>>(),
            "earliest first"
        );
    }
}
