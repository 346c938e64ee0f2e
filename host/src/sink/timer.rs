//! The sink's timer: [`TimerState`], the one place that ties the guest's
//! next deadline, the timer task's sleep and a requested flush together,
//! and the task itself, which sleeps on the sink's [`Clock`] until that
//! deadline and then expires what is due. With `ManualClock`, `advance`
//! wakes it.
//!
//! # Invariants
//!
//! * The task sleeps until `sleeping_until` (or, with none, until woken).
//!   Whoever learns of a deadline earlier than that (the guest reported
//!   one, or a queued wait will have one) or asks for a flush must wake it:
//!   every method that can require this returns `true` then, and the owner
//!   notifies the task.
//! * `next_deadline` is never later than the earliest pending deadline of
//!   the guest or of a queued registration: a deadline is only ever
//!   replaced by the guest's own report (which covers everything flushed)
//!   or lowered by a queued one.
//! * A flush is requested at most once per batch (`request_flush` answers
//!   `true` only for the first request), and [`TimerState::take_flush`]
//!   hands it to the task exactly once.

use crate::clock::Clock;
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// The timer's bookkeeping, owned by the sink's core under its lock.
#[derive(Debug, Default)]
pub(super) struct TimerState {
    /// The earliest deadline the guest reported or a queued wait will have.
    next_deadline: Option<u64>,
    /// The deadline the task sleeps until, if any.
    sleeping_until: Option<u64>,
    /// A polled wait asked the task to flush the queue.
    flush_requested: bool,
}

impl TimerState {
    /// The guest reported its earliest pending deadline (after every call
    /// that can change it). `true`: wake the task, it sleeps too long.
    pub(super) fn reported(&mut self, next: Option<u64>) -> bool {
        self.next_deadline = next;
        next.is_some_and(|next| self.sleeping_until.is_none_or(|at| next < at))
    }

    /// A wait with this deadline was queued (the guest does not know it
    /// yet). `true`: wake the task.
    pub(super) fn queued(&mut self, deadline: u64) -> bool {
        if self.next_deadline.is_some_and(|next| next <= deadline) {
            return false;
        }
        self.reported(Some(deadline))
    }

    /// Asks the task to flush the queue soon. `true` only for the first
    /// request of a batch: wake the task.
    pub(super) fn request_flush(&mut self) -> bool {
        !std::mem::replace(&mut self.flush_requested, true)
    }

    /// Whether the task must flush before it sleeps (the request is taken).
    pub(super) fn take_flush(&mut self) -> bool {
        std::mem::take(&mut self.flush_requested)
    }

    /// The deadline the task sleeps until now (none: until woken),
    /// recorded as its sleep.
    pub(super) fn sleep(&mut self) -> Option<u64> {
        self.sleeping_until = self.next_deadline;
        self.next_deadline
    }

    /// The instance was replaced: no deadline is pending, and a requested
    /// flush has nothing left to send.
    pub(super) fn clear(&mut self) {
        self.next_deadline = None;
        self.flush_requested = false;
    }
}

/// What the timer task drives: the sink's core.
pub(super) trait Timed: Send + Sync + 'static {
    /// Flushes if asked ([`TimerState::take_flush`]), then says until when
    /// to sleep ([`TimerState::sleep`]).
    fn plan(&self) -> Option<u64>;
    /// Expires every waiter that is due.
    fn expire(&self);
}

/// Starts the timer task of `owner` on the current tokio runtime, or on a
/// small thread of its own outside one. It wakes on `wake`, sleeps on
/// `clock`, and exits once `owner` is dropped (it holds only a weak
/// reference between turns).
pub(super) fn spawn<T: Timed>(owner: &Arc<T>, wake: Arc<Notify>, clock: Arc<dyn Clock>) {
    let task = run(Arc::downgrade(owner), wake, clock);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => {
            // Outside a runtime (a plain thread): give the timer its own.
            let spawned = std::thread::Builder::new()
                .name("approval-sink-timer".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                    {
                        Ok(rt) => rt.block_on(task),
                        Err(e) => {
                            tracing::error!(error = %e, "no runtime for the approval-sink timer")
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start the approval-sink timer thread");
            }
        }
    }
}

/// Plans, sleeps until the deadline or a wake-up, expires, repeats.
async fn run<T: Timed>(owner: Weak<T>, wake: Arc<Notify>, clock: Arc<dyn Clock>) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        // Register interest before planning, so a wake-up sent in between
        // is not lost.
        notified.as_mut().enable();
        let until = {
            let Some(owner) = owner.upgrade() else {
                return;
            };
            owner.plan()
        };
        match until {
            None => notified.await,
            Some(deadline) => {
                tokio::select! {
                    () = clock.sleep_until(deadline) => {
                        let Some(owner) = owner.upgrade() else { return };
                        owner.expire();
                    }
                    () = &mut notified => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_deadlines_and_first_flush_requests_wake_the_task() {
        let mut t = TimerState::default();
        assert!(t.queued(100), "nothing planned: wake");
        assert_eq!(t.sleep(), Some(100));
        assert!(!t.queued(200), "later than the sleep");
        assert!(t.queued(50), "earlier than the sleep");
        assert!(!t.reported(None), "nothing pending never wakes");
        assert!(t.request_flush());
        assert!(!t.request_flush(), "once per batch");
        assert!(t.take_flush());
        assert!(!t.take_flush(), "taken once");
        assert_eq!(t.sleep(), None);
        assert!(t.reported(Some(7)), "the task sleeps without a deadline");
        t.clear();
        assert_eq!(t.sleep(), None);
    }
}
