//! The core's waits: queueing, polling and cancelling them, delivering a
//! verdict with the queue, and the flush that sends the queue to the guest
//! and offers the waits still pending to a watcher (`new_waits.rs`).

use super::{Core, Inner};
use crate::clock::duration_ns;
use crate::error::SinkError;
use crate::outcome::Decision;
use crate::sink::new_waits::{self, NewWait, NewWaits, Offer};
use crate::sink::queue::Watched;
use crate::slots::SlotResult;
use approval_guest::verdict::Verdict;
use std::task::Context;
use std::time::Duration;

/// What a flush did for its caller.
#[derive(Debug, Default)]
pub(super) struct Flushed {
    /// Waiters the queued verdict woke.
    woken: u32,
    /// The queued verdict's typed error, if it was refused.
    verdict_error: Option<SinkError>,
}

impl Core {
    /// Takes a slot and queues its registration on `id`; returns the slot's
    /// ticket. The guest learns of it at the next flush (S1 holds: every
    /// guest call flushes first).
    pub(in crate::sink) fn queue_wait(&self, id: &str, timeout: Duration) -> u64 {
        self.lock(|inner| {
            let ticket = inner.slots.insert();
            let start = self.clock.now_ns();
            let timeout_ns = duration_ns(timeout);
            if inner.new_waits.as_ref().is_some_and(Offer::is_closed) {
                inner.new_waits = None;
            }
            let watch = inner.new_waits.is_some();
            inner.queue.push_wait(ticket, start, timeout_ns, id, watch);
            // The guest will clamp the timeout the same way.
            let capped = timeout_ns.min(duration_ns(self.config.max_timeout));
            if inner.timer.queued(start.saturating_add(capped)) {
                self.wake_timer.notify_one();
            }
            self.flush_if_full(inner);
            ticket
        })
    }

    /// Polls slot `ticket`. While waits are queued, asks the timer task to
    /// flush (once per batch) instead of flushing inline, so tasks spawned
    /// in a burst and polled by other workers do not each make a guest
    /// call for a handful of registrations under the contended lock.
    pub(in crate::sink) fn poll_wait(&self, ticket: u64, cx: &Context<'_>) -> Option<SlotResult> {
        self.lock(|inner| {
            if !inner.queue.is_empty() && inner.timer.request_flush() {
                self.wake_timer.notify_one();
            }
            inner.slots.poll(ticket, cx.waker())
        })
    }

    /// Frees slot `ticket` (its future went away) and queues the guest's
    /// cancel if it was still waiting (S7).
    pub(in crate::sink) fn cancel_wait(&self, ticket: u64) {
        self.lock(|inner| {
            if inner.slots.remove(ticket) {
                inner.queue.push_cancel(ticket);
                self.flush_if_full(inner);
            }
        });
    }

    /// Delivers a verdict in one guest call with the queued waits; returns
    /// how many waiters it woke, or its typed error.
    pub(in crate::sink) fn deliver(&self, id: &str, decision: Decision) -> Result<u32, SinkError> {
        self.lock(|inner| {
            let Some(verdict) = Verdict::from_wire(decision as i32) else {
                inner.counters.rejected_verdict();
                return Err(SinkError::UnknownDecision(decision as i32));
            };
            self.check_id_length(id)?;
            inner.queue.push_verdict(id, verdict);
            let flushed = self.flush(inner)?;
            let woken = flushed.verdict_error.map_or(Ok(flushed.woken), Err)?;
            // `resolve` returns no journal (S18): the entry is written here
            // in the guest's own format (a repeat is harmless: a fresh
            // instance skips it).
            inner.journal.push(id, verdict, self.clock.now_ns());
            Ok(woken)
        })
    }

    /// The guest's limit on a request id's length, checked before the id is
    /// copied into the queue or the guest (a huge id would otherwise grow
    /// the guest's memory for good); the same typed error the guest gives.
    pub(in crate::sink) fn check_id_length(&self, id: &str) -> Result<(), SinkError> {
        if id.len() > self.config.max_request_id_bytes as usize {
            let len = u32::try_from(id.len()).unwrap_or(u32::MAX);
            return Err(SinkError::RequestIdTooLong(len));
        }
        Ok(())
    }

    /// Waits pending now; queued waits that settle at once (an early
    /// verdict, an error) must not count, so the queue is flushed first.
    pub(in crate::sink) fn waiter_count(&self) -> usize {
        self.lock(|inner| {
            let _ = self.flush(inner);
            inner.slots.waiting()
        })
    }

    /// Offers every new pending wait from now on to the returned watcher
    /// (replacing any earlier one).
    pub(in crate::sink) fn watch_new_waits(&self) -> NewWaits {
        let (offer, waits) = new_waits::channel();
        self.lock(|inner| inner.new_waits = Some(offer));
        waits
    }

    pub(super) fn flush_if_full(&self, inner: &mut Inner) {
        if inner.queue.is_full() {
            // Errors have reached the queued waits' slots.
            let _ = self.flush(inner);
        }
    }

    /// Sends the queue to the guest, if anything is queued, and settles
    /// what it finished; then offers the watched waits still pending. A
    /// failed flush (a fault, which resets the instance, or a quarantine)
    /// settles every queued wait with `Reset` or the error, and returns it.
    pub(super) fn flush(&self, inner: &mut Inner) -> Result<Flushed, SinkError> {
        if inner.queue.is_empty() {
            return Ok(Flushed::default());
        }
        let mut taken = inner.queue.take();
        // The guest takes the time from here rather than calling back for it.
        let now = self.clock.now_ns();
        let flushed = match self.call_now(inner, |a| a.apply(now, taken.bytes())) {
            Ok(applied) => {
                let mut flushed = Flushed {
                    woken: applied.woken,
                    verdict_error: None,
                };
                for (op, error) in applied.errors {
                    match taken.ticket(op) {
                        Some(ticket) => {
                            inner.slots.complete(ticket, Err(error.into()));
                        }
                        // Only a verdict (queued last, by `deliver`) fails
                        // without a slot; a cancel never fails.
                        None => flushed.verdict_error = Some(error),
                    }
                }
                self.complete(inner, applied.batch);
                Self::offer_new_waits(inner, taken.take_watched());
                Ok(flushed)
            }
            Err(e) => {
                // After a fault every waiting slot is already `Reset`
                // (`complete` ignores those); a refusal reaches each wait.
                for ticket in taken.registrations() {
                    inner.slots.complete(ticket, Err(e.clone().into()));
                }
                Err(e)
            }
        };
        inner.queue.recycle(taken);
        flushed
    }

    /// Offers the watched registrations that are still pending.
    fn offer_new_waits(inner: &mut Inner, watched: Vec<Watched>) {
        let Some(offer) = &inner.new_waits else {
            return;
        };
        let mut watcher_gone = false;
        for w in watched {
            if !inner.slots.is_waiting(w.ticket) {
                continue;
            }
            let wait = NewWait {
                request_id: w.request_id,
                timeout: Duration::from_nanos(w.timeout_ns),
            };
            if !offer.offer(wait) {
                watcher_gone = true;
                break;
            }
        }
        if watcher_gone {
            inner.new_waits = None;
        }
    }
}
