//! [`Core`]: what every handle of one sink shares, and the one place that
//! holds the sink's lock (this file: the state, the lock, guest calls,
//! completions and the reset; `waits.rs`: waits, verdicts and the flush;
//! `stream.rs`: ingest, the resume point, counters, the pump's claim). The state behind the lock ([`Inner`]) is a set of
//! owners, each keeping its fields private behind methods that state its
//! invariants: the adapter (the guest instance), the waiter [`Slots`], the
//! [`OpQueue`], the [`TimerState`], the [`CrashLoopGuard`], the
//! [`VerdictJournal`] and the new-waits [`Offer`]. The core calls them in
//! the order the rules below need; no owner reaches another.
//!
//! # Invariants
//!
//! * Every guest access goes through [`Core::call`] under the lock, which
//!   flushes the queue first, so nothing reaches the guest ahead of a wait
//!   asked for before it (S1 for the guest as for the host's slots), and
//!   calls never interleave. A fault resets the instance there (S12).
//! * The lock is only taken through [`Core::lock`], which wakes the futures
//!   completed inside it after releasing the guard (a waker may poll inline
//!   or run arbitrary code; tokio's `WakeList` pattern), and is never held
//!   across an `.await`.
//! * After every guest call that reports a deadline, the timer learns it;
//!   a queued wait's deadline is computed here as the guest will compute
//!   it, so a wait nobody flushes still times out on time.
//! * A flushed registration's slot is settled like any completion: an early
//!   verdict, its typed error, or `Reset` when the flush faulted.
//! * A reset ends every outstanding wait as `Reset`, queued ones included,
//!   and the fresh instance remembers the journal's verdicts and resumes
//!   where the old one stood (S12, S18).

mod stream;
mod waits;

pub(crate) use stream::PumpClaim;

use super::journal::VerdictJournal;
use super::new_waits::Offer;
use super::queue::OpQueue;
use super::recovery::CrashLoopGuard;
use super::timer::{self, Timed, TimerState};
use crate::adapter::{Adapter, Batch};
use crate::clock::{Clock, duration_ns};
use crate::component::Loaded;
use crate::config::SinkConfig;
use crate::error::{HostError, SinkError};
use crate::imports::StoreState;
use crate::outcome::Outcome;
use crate::report::ResumePoint;
use crate::slots::Slots;
use crate::stats::HostCounters;
use crate::trust::TrustedKey;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::{Notify, broadcast};
use wasmtime::StoreLimitsBuilder;

/// The shared state of one sink, behind every handle.
pub(crate) struct Core {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    /// Wakes the timer task: an earlier deadline, a requested flush, or the
    /// sink went away.
    wake_timer: Arc<Notify>,
    invalidations: broadcast::Sender<String>,
    loaded: Arc<Loaded>,
    config: SinkConfig,
    /// The reviewer keys every instance trusts (S17); empty: none.
    trusted_keys: Arc<[TrustedKey]>,
    /// A pump feeds this sink's stream now (one per sink).
    pump_claimed: AtomicBool,
}

/// What the lock guards: the owners of the sink's state.
struct Inner {
    adapter: Adapter,
    slots: Slots,
    queue: OpQueue,
    timer: TimerState,
    /// The stream's resume point as of the last ingest: carried over to a
    /// fresh instance after a reset, readable while the guest is
    /// quarantined.
    resume: ResumePoint,
    counters: HostCounters,
    crash_loop: CrashLoopGuard,
    /// What the guest remembers, for a fresh instance after a trap (S18).
    journal: VerdictJournal,
    /// Where new pending waits are offered, while someone watches.
    new_waits: Option<Offer>,
}

/// The per-store state of an instance: imports and limits.
pub(super) fn store_state(
    clock: &Arc<dyn Clock>,
    invalidations: &broadcast::Sender<String>,
    config: &SinkConfig,
) -> StoreState {
    StoreState {
        clock: Arc::clone(clock),
        invalidations: invalidations.clone(),
        limits: StoreLimitsBuilder::new()
            .memory_size(config.max_memory_bytes)
            .instances(4)
            .build(),
    }
}

impl Core {
    /// A sink's core around a fresh instance, with its timer task started.
    pub(super) fn start(
        adapter: Adapter,
        clock: Arc<dyn Clock>,
        invalidations: broadcast::Sender<String>,
        loaded: Arc<Loaded>,
        config: SinkConfig,
        trusted_keys: Arc<[TrustedKey]>,
    ) -> Arc<Self> {
        let core = Arc::new(Core {
            inner: Mutex::new(Inner {
                adapter,
                slots: Slots::new(),
                queue: OpQueue::default(),
                timer: TimerState::default(),
                resume: ResumePoint::default(),
                counters: HostCounters::default(),
                crash_loop: CrashLoopGuard::new(&config),
                journal: VerdictJournal::new(
                    config.verdict_cache_capacity,
                    duration_ns(config.verdict_cache_ttl),
                ),
                new_waits: None,
            }),
            wake_timer: Arc::new(Notify::new()),
            clock,
            invalidations,
            loaded,
            config,
            trusted_keys,
            pump_claimed: AtomicBool::new(false),
        });
        timer::spawn(&core, Arc::clone(&core.wake_timer), Arc::clone(&core.clock));
        core
    }

    /// The sink's configuration.
    pub(super) fn config(&self) -> &SinkConfig {
        &self.config
    }

    /// Trusted reviewer keys are configured (S17).
    pub(super) fn requires_signatures(&self) -> bool {
        !self.trusted_keys.is_empty()
    }

    /// Size in bytes of the component this sink runs.
    pub(super) fn component_size(&self) -> usize {
        self.loaded.size
    }

    /// A receiver of policy invalidations (S10).
    pub(super) fn subscribe_invalidations(&self) -> broadcast::Receiver<String> {
        self.invalidations.subscribe()
    }

    /// Runs `f` under the lock, then wakes the futures it completed.
    fn lock<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let (out, wakers) = {
            // No guest call panics the host; poison would only mean a bug in
            // our own code, and the state stays consistent call by call.
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut inner);
            (out, inner.slots.take_wakers())
        };
        for waker in wakers {
            waker.wake();
        }
        out
    }

    /// Runs one guest call after flushing the queue (the queued waits'
    /// outcomes reach their own slots; a failed flush has settled them, and
    /// this call then meets the same refusal or runs on the fresh instance).
    fn call<R>(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        let _ = self.flush(inner);
        self.call_now(inner, f)
    }

    /// One guest call as it is: refused while quarantined
    /// (`SinkError::CrashLoop`); a fault resets the instance (S12) and is
    /// this caller's `SinkError::GuestFault`.
    fn call_now<R>(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        inner.crash_loop.admit(Instant::now)?;
        inner.counters.guest_call();
        let result = f(&mut inner.adapter);
        if let Err(SinkError::GuestFault(why)) = &result {
            self.reset(inner, why);
        }
        result
    }

    /// Fills the slots of finished waiters, keeps the journal they wrote and
    /// tells the timer the guest's next deadline.
    fn complete(&self, inner: &mut Inner, batch: Batch) {
        for (ticket, outcome) in batch.done {
            inner.slots.complete(ticket, Ok(outcome));
        }
        if !batch.journal.is_empty() {
            inner.journal.extend(batch.journal, self.clock.now_ns());
        }
        if inner.timer.reported(batch.next_deadline) {
            self.wake_timer.notify_one();
        }
    }

    /// Replaces a faulted instance (S12): the fresh one remembers the
    /// journal's verdicts and resumes where the old one stood (S18); every
    /// outstanding wait, queued ones included, ends as `Reset`; a guest
    /// that keeps faulting is quarantined.
    fn reset(&self, inner: &mut Inner, why: &str) {
        inner.counters.reset();
        tracing::error!(fault = %why, "approval-sink guest faulted; resetting its instance");
        let journal = inner.journal.bytes();
        let state = store_state(&self.clock, &self.invalidations, &self.config);
        let resumed = Adapter::new(&self.loaded, state, &self.config, &self.trusted_keys).and_then(
            |mut a| {
                a.restore_verdicts(&journal)
                    .and_then(|_| a.resume_from(inner.resume))
                    .map_err(|e| HostError::Instantiate(Arc::new(e)))?;
                Ok(a)
            },
        );
        match resumed {
            Ok(adapter) => inner.adapter = adapter,
            // The old store stays; the next call faults again and retries.
            Err(e) => tracing::error!(error = %e, "could not re-instantiate the guest"),
        }
        if let Some(pause) = inner.crash_loop.note_reset(Instant::now()) {
            tracing::error!(
                window = ?self.config.crash_loop_window,
                ?pause,
                "approval-sink guest is crash-looping; refusing calls"
            );
        }
        // Queued operations were for the old instance; their waits are
        // still `Waiting` and end as `Reset` with the rest.
        inner.queue.discard();
        for ticket in inner.slots.waiting_tickets() {
            inner.slots.complete(ticket, Ok(Outcome::Reset));
        }
        inner.timer.clear();
    }
}

impl Timed for Core {
    fn plan(&self) -> Option<u64> {
        self.lock(|inner| {
            if inner.timer.take_flush() {
                // The outcomes reach their slots.
                let _ = self.flush(inner);
            }
            inner.timer.sleep()
        })
    }

    fn expire(&self) {
        self.lock(|inner| {
            if let Ok(batch) = self.call(inner, |a| a.expire()) {
                self.complete(inner, batch);
            }
        });
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Lets the timer task see that the sink is gone and exit.
        self.wake_timer.notify_one();
    }
}
