//! The sink's timer task: sleeps on the sink's [`Clock`] until the earliest
//! deadline the guest reported (or a queued wait will have), then calls
//! `expire`; also flushes the queue of waits when a polled `Wait` asks
//! (`queue.rs`). With `ManualClock`, `advance` wakes it.

use super::shared::Shared;
use crate::clock::Clock;
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

impl Shared {
    /// The timer fired: expire everything due.
    fn expire(&self) {
        self.with_state(|state| {
            if let Ok(batch) = self.call(state, |a| a.expire()) {
                self.apply(state, batch);
            }
        });
    }
}

/// Starts the timer task of `shared` on the current tokio runtime, or on a
/// small thread of its own outside one.
pub(super) fn spawn(shared: &Arc<Shared>) {
    let task = run(
        Arc::downgrade(shared),
        Arc::clone(&shared.timer),
        Arc::clone(&shared.clock),
    );
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

/// Sleeps until the earliest deadline, expires, repeats; exits when the sink
/// is dropped. Holds only a weak reference between wake-ups.
async fn run(shared: Weak<Shared>, wake: Arc<Notify>, clock: Arc<dyn Clock>) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        // Register interest before reading the deadline, so a notify sent in
        // between is not lost.
        notified.as_mut().enable();
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.with_state(|state| {
                if state.queue.flush_requested() {
                    // A polled wait asked for it (`queue.rs`); the outcomes
                    // reach their slots.
                    let _ = shared.flush(state);
                }
                state.timer_sleeping_until = state.next_deadline;
                state.next_deadline
            })
        };
        match next {
            None => notified.await,
            Some(deadline) => {
                tokio::select! {
                    () = clock.sleep_until(deadline) => {
                        let Some(shared) = shared.upgrade() else { return };
                        shared.expire();
                    }
                    () = &mut notified => {}
                }
            }
        }
    }
}
