//! Coalescing (DESIGN.md section 8): `wait` and a dropped [`Wait`]'s cancel
//! do not call the guest; they append to the sink's operation queue under
//! its mutex, and the queue goes to the guest as one flat buffer
//! (`registry.apply`) before any other guest call. `deliver` appends its
//! verdict and flushes, so a wait and its verdict cost one guest call.
//!
//! A `Wait` polled while waits are queued does not flush inline: it asks
//! the timer task to flush (once per batch), so tasks spawned in a burst
//! and polled by other workers meanwhile do not each make a guest call
//! for a handful of registrations under the contended mutex; the timer
//! task sends them in one call moments later. That flush is what settles a
//! queued wait nothing else flushes (an early verdict, a refused id).
//!
//! # Invariants
//!
//! * Nothing reaches the guest without the flush: [`Shared::call`] flushes
//!   first, so an event, an expiry or a stats read sees every wait queued
//!   before it (S1 holds for the guest as for the host's slots).
//! * A queued registration's slot is `Waiting`; the flush settles it like
//!   any completion: an early verdict, its typed error (`Err` on its
//!   `Wait`), or `Reset` when the flush faulted (S12).
//! * The timer knows the deadline of every queued registration (it is
//!   computed here as the guest will, from the time the wait was asked
//!   for), so a wait nobody flushes still times out on time.
//! * The queue is bounded: past [`FLUSH_BYTES`] it is flushed at once, so
//!   a burst never makes the guest allocate more than that for one call.
//!
//! [`Wait`]: super::Wait

use super::shared::{Shared, State};
use crate::clock::duration_ns;
use crate::error::SinkError;
use approval_guest::ops::OpWriter;
use approval_guest::verdict::Verdict;

/// A queue this large is flushed at once: ~1,500 registrations of short
/// ids, enough to amortise the call, small enough that the guest's copy of
/// it never grows its memory much.
pub(super) const FLUSH_BYTES: usize = 64 * 1024;

/// Operations waiting for the next guest call.
#[derive(Debug, Default)]
pub(super) struct OpQueue {
    writer: OpWriter,
    /// For each queued operation, the slot token of a registration (`None`
    /// for a cancel or a verdict): where its error goes.
    tokens: Vec<Option<u64>>,
    /// The timer task was asked to flush this batch.
    flush_requested: bool,
}

impl OpQueue {
    /// Nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Drops every queued operation (the instance they were for is gone).
    pub(super) fn clear(&mut self) {
        self.writer.clear(FLUSH_BYTES);
        self.tokens.clear();
        self.flush_requested = false;
    }

    /// The timer task must flush (see the module docs).
    pub(super) fn flush_requested(&self) -> bool {
        self.flush_requested
    }
}

/// What a flush did for its caller.
#[derive(Debug, Default)]
pub(super) struct Flushed {
    /// Waiters the queued verdict woke.
    pub(super) woken: u32,
    /// The queued verdict's typed error, if it was refused.
    pub(super) resolve_error: Option<SinkError>,
}

impl Shared {
    /// Queues the registration of slot `token` on `id`.
    pub(super) fn queue_wait(&self, state: &mut State, token: u64, id: &str, timeout_ns: u64) {
        let start = self.clock.now_ns();
        state.queue.writer.register(token, start, timeout_ns, id);
        state.queue.tokens.push(Some(token));
        // The guest will clamp the timeout the same way.
        let deadline = start.saturating_add(timeout_ns.min(duration_ns(self.config.max_timeout)));
        if state.next_deadline.is_none_or(|next| deadline < next) {
            self.note_deadline(state, Some(deadline));
        }
        self.flush_if_full(state);
    }

    /// Queues the cancel of slot `token` (its future went away).
    pub(super) fn queue_cancel(&self, state: &mut State, token: u64) {
        state.queue.writer.cancel(token);
        state.queue.tokens.push(None);
        self.flush_if_full(state);
    }

    /// Queues a verdict and flushes: one guest call for the queued waits and
    /// the verdict. Returns how many waiters it woke, or its typed error.
    pub(super) fn flush_with_verdict(
        &self,
        state: &mut State,
        id: &str,
        verdict: Verdict,
    ) -> Result<u32, SinkError> {
        state.queue.writer.resolve(id, verdict);
        state.queue.tokens.push(None);
        let flushed = self.flush(state)?;
        match flushed.resolve_error {
            Some(e) => Err(e),
            None => Ok(flushed.woken),
        }
    }

    /// Asks the timer task to flush the queue soon, once per batch (a
    /// polled `Wait` whose registration may still be queued).
    pub(super) fn request_flush(&self, state: &mut State) {
        if !state.queue.is_empty() && !state.queue.flush_requested {
            state.queue.flush_requested = true;
            self.timer.notify_one();
        }
    }

    fn flush_if_full(&self, state: &mut State) {
        if state.queue.writer.bytes().len() >= FLUSH_BYTES {
            // Errors have reached the queued waits' slots.
            let _ = self.flush(state);
        }
    }

    /// Sends the queue to the guest, if anything is queued, and settles
    /// what it finished. A failed flush (a fault, which resets the
    /// instance, or a quarantine) settles every queued wait with `Reset` or
    /// the error; it is also returned.
    pub(super) fn flush(&self, state: &mut State) -> Result<Flushed, SinkError> {
        if state.queue.is_empty() {
            return Ok(Flushed::default());
        }
        let mut queue = std::mem::take(&mut state.queue);
        // The guest takes the time from here rather than calling back for it.
        let now = self.clock.now_ns();
        let result = self.call_now(state, |a| a.apply(now, queue.writer.bytes()));
        let flushed = match result {
            Ok(applied) => {
                let mut flushed = Flushed {
                    woken: applied.woken,
                    resolve_error: None,
                };
                for (op, error) in applied.errors {
                    match queue.tokens.get(op as usize) {
                        Some(Some(token)) => {
                            state.slots.complete(*token, Err(error));
                        }
                        // Only a verdict (queued last, by `deliver`) fails
                        // without a slot; a cancel never fails.
                        _ => flushed.resolve_error = Some(error),
                    }
                }
                self.apply(state, applied.batch);
                Ok(flushed)
            }
            Err(e) => {
                // After a fault every waiting slot is already `Reset`
                // (`complete` ignores those); a refusal reaches each wait.
                for token in queue.tokens.iter().flatten() {
                    state.slots.complete(*token, Err(e.clone()));
                }
                Err(e)
            }
        };
        // Keep the buffer's capacity for the next round (up to the bound).
        queue.clear();
        state.queue = queue;
        flushed
    }
}
