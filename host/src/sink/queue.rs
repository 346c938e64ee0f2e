//! [`OpQueue`]: coalescing (SPEC.md §4, §11). `wait` and a dropped
//! [`Wait`]'s cancel do not call the guest; they append to the sink's
//! operation queue under its lock, and the queue goes to the guest as one
//! flat buffer (`registry.apply`, the op buffer of SPEC.md §5.5) before any
//! other guest call. `deliver` appends its verdict and flushes, so a wait
//! and its verdict cost one guest call.
//!
//! # Invariants
//!
//! * Operations leave in the order they were queued, all at once
//!   ([`OpQueue::take`]); nothing else reaches the guest first (the core
//!   flushes before every other call).
//! * For each queued operation the queue knows the slot ticket of a
//!   registration (`None` for a cancel or a verdict), so the guest's typed
//!   error for operation `i` reaches the right wait.
//! * While new waits are watched, each queued registration's id and
//!   timeout are kept too, so after the flush the core can offer the ones
//!   still pending to the watcher (durable lookups); otherwise nothing
//!   extra is kept.
//! * Bounded: past [`FLUSH_BYTES`] the queue reports itself full and the
//!   core flushes at once, so a burst never makes the guest allocate more
//!   than that for one call.
//!
//! [`Wait`]: super::Wait

use approval_guest::ops::OpWriter;
use approval_guest::verdict::Verdict;

/// A queue this large is flushed at once: ~1,500 registrations of short
/// ids, enough to amortise the call, small enough that the guest's copy of
/// it never grows its memory much.
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;

/// A queued registration kept for the new-waits watcher.
#[derive(Debug)]
pub(super) struct Watched {
    /// Its slot ticket.
    pub(super) ticket: u64,
    /// Its request id.
    pub(super) request_id: String,
    /// Its timeout in nanoseconds.
    pub(super) timeout_ns: u64,
}

/// Operations waiting for the next guest call.
#[derive(Debug, Default)]
pub(super) struct OpQueue {
    writer: OpWriter,
    tickets: Vec<Option<u64>>,
    watched: Vec<Watched>,
}

/// A taken batch of operations: what one `apply` call sends.
#[derive(Debug, Default)]
pub(super) struct Taken {
    writer: OpWriter,
    tickets: Vec<Option<u64>>,
    watched: Vec<Watched>,
}

impl OpQueue {
    /// Nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Over [`FLUSH_BYTES`]: flush now.
    pub(super) fn is_full(&self) -> bool {
        self.writer.bytes().len() >= FLUSH_BYTES
    }

    /// Queues the registration of slot `ticket` on `id`, asked for at
    /// `start_ns`; `watch` keeps its id for the new-waits watcher.
    pub(super) fn push_wait(
        &mut self,
        ticket: u64,
        start_ns: u64,
        timeout_ns: u64,
        id: &str,
        watch: bool,
    ) {
        self.writer.register(ticket, start_ns, timeout_ns, id);
        self.tickets.push(Some(ticket));
        if watch {
            self.watched.push(Watched {
                ticket,
                request_id: id.to_owned(),
                timeout_ns,
            });
        }
    }

    /// Queues the cancel of slot `ticket` (its future went away).
    pub(super) fn push_cancel(&mut self, ticket: u64) {
        self.writer.cancel(ticket);
        self.tickets.push(None);
    }

    /// Queues a verdict (the last operation of a `deliver`'s flush).
    pub(super) fn push_verdict(&mut self, id: &str, verdict: Verdict) {
        self.writer.resolve(id, verdict);
        self.tickets.push(None);
    }

    /// Takes every queued operation, leaving the queue empty.
    pub(super) fn take(&mut self) -> Taken {
        Taken {
            writer: std::mem::take(&mut self.writer),
            tickets: std::mem::take(&mut self.tickets),
            watched: std::mem::take(&mut self.watched),
        }
    }

    /// Gives a sent batch's buffers back for the next round (up to the
    /// bound), if the queue has none yet.
    pub(super) fn recycle(&mut self, mut taken: Taken) {
        if self.is_empty() {
            taken.writer.clear(FLUSH_BYTES);
            taken.tickets.clear();
            taken.watched.clear();
            self.writer = taken.writer;
            self.tickets = taken.tickets;
            self.watched = taken.watched;
        }
    }

    /// Drops every queued operation (the instance they were for is gone);
    /// returns the tickets of the registrations dropped.
    pub(super) fn discard(&mut self) -> Vec<u64> {
        let taken = self.take();
        taken.tickets.into_iter().flatten().collect()
    }
}

impl Taken {
    /// The encoded operations.
    pub(super) fn bytes(&self) -> &[u8] {
        self.writer.bytes()
    }

    /// The slot ticket of operation `op`, if it is a registration.
    pub(super) fn ticket(&self, op: u32) -> Option<u64> {
        self.tickets.get(op as usize).copied().flatten()
    }

    /// The tickets of every registration in the batch.
    pub(super) fn registrations(&self) -> impl Iterator<Item = u64> + '_ {
        self.tickets.iter().flatten().copied()
    }

    /// The watched registrations, moved out.
    pub(super) fn take_watched(&mut self) -> Vec<Watched> {
        std::mem::take(&mut self.watched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approval_guest::ops::{Op, OpReader};

    #[test]
    fn operations_leave_in_order_with_their_tickets() {
        let mut q = OpQueue::default();
        q.push_wait(7, 100, 5, "req-1", true);
        q.push_cancel(7);
        q.push_wait(8, 101, 6, "req-2", false);
        q.push_verdict("req-1", Verdict::Denied);
        let mut taken = q.take();
        assert!(q.is_empty());
        let ops: Vec<_> = OpReader::new(taken.bytes()).map(Result::unwrap).collect();
        assert!(matches!(
            ops[0],
            Op::Register {
                waiter: 7,
                id: "req-1",
                ..
            }
        ));
        assert!(matches!(ops[3], Op::Resolve { id: "req-1", .. }));
        assert_eq!(
            [0, 1, 2, 3].map(|i| taken.ticket(i)),
            [Some(7), None, Some(8), None]
        );
        assert_eq!(taken.registrations().collect::<Vec<_>>(), [7, 8]);
        let watched = taken.take_watched();
        assert_eq!(watched.len(), 1, "only the watched registration");
        assert_eq!(
            (watched[0].ticket, watched[0].request_id.as_str()),
            (7, "req-1")
        );
        q.recycle(taken);
        assert!(q.is_empty() && !q.is_full());
        q.push_wait(9, 0, 0, "x", false);
        assert_eq!(q.discard(), [9]);
    }
}
