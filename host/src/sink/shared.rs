//! What every handle of one sink shares: the guest instance and the host
//! slots behind one mutex, and the one way to call the guest.
//!
//! # Invariants
//!
//! * Every guest access goes through [`Shared::call`] under the mutex, so
//!   calls never interleave; a fault resets the instance there (S12). It
//!   flushes the queue of waits and cancels first (`queue.rs`), so nothing
//!   reaches the guest ahead of a wait asked for before it.
//! * The mutex is only taken through [`Shared::with_state`], which wakes the
//!   futures completed inside it after releasing the guard (a waker may poll
//!   inline or run arbitrary code; tokio's `WakeList` pattern).
//! * The mutex is never held across an `.await`.

use super::journal::VerdictJournal;
use super::queue::OpQueue;
use super::recovery::CrashLoopGuard;
use crate::adapter::{Adapter, Batch};
use crate::clock::{Clock, duration_ns};
use crate::component::Loaded;
use crate::config::SinkConfig;
use crate::error::SinkError;
use crate::imports::StoreState;
use crate::report::ResumePoint;
use crate::slots::Slots;
use crate::stats::HostCounters;
use crate::trust::TrustedKey;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, broadcast};
use wasmtime::StoreLimitsBuilder;

/// The state of one sink, shared by all its handles.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(super) clock: Arc<dyn Clock>,
    /// Wakes the timer task: an earlier deadline, or the sink went away.
    pub(super) timer: Arc<Notify>,
    pub(super) invalidations: broadcast::Sender<String>,
    pub(super) loaded: Arc<Loaded>,
    pub(super) config: SinkConfig,
    /// The reviewer keys every instance trusts (S17); empty: none.
    pub(super) trusted_keys: Arc<[TrustedKey]>,
    /// A pump feeds this sink's stream now (one per sink).
    pub(super) pump_claimed: AtomicBool,
    /// The running pump's verdict lookup (durable waits), if its source has
    /// one. Taken without the state mutex held.
    pub(super) lookup: Mutex<Option<Arc<super::lookup::LookupHook>>>,
    /// `lookup` is set: checked first, so a sink without a lookup pays one
    /// atomic load per wait, not a lock.
    pub(super) lookup_installed: AtomicBool,
}

/// What the mutex guards.
pub(super) struct State {
    pub(super) adapter: Adapter,
    pub(super) slots: Slots,
    /// Registrations and cancels not yet sent to the guest (`queue.rs`).
    pub(super) queue: OpQueue,
    /// Earliest pending deadline the guest reported.
    pub(super) next_deadline: Option<u64>,
    /// The deadline the timer task is sleeping until, if any.
    pub(super) timer_sleeping_until: Option<u64>,
    /// The stream's resume point as of the last ingest, carried over to a
    /// fresh instance after a reset (S12) and readable while the guest is
    /// quarantined.
    pub(super) resume: ResumePoint,
    pub(super) counters: HostCounters,
    pub(super) crash_loop: CrashLoopGuard,
    /// What the guest remembers, for a fresh instance after a trap (S18).
    pub(super) journal: VerdictJournal,
}

impl Shared {
    /// A sink's shared state around a fresh instance.
    pub(super) fn new(
        adapter: Adapter,
        clock: Arc<dyn Clock>,
        invalidations: broadcast::Sender<String>,
        loaded: Arc<Loaded>,
        config: SinkConfig,
        trusted_keys: Arc<[TrustedKey]>,
    ) -> Self {
        Shared {
            state: Mutex::new(State {
                adapter,
                slots: Slots::new(),
                queue: OpQueue::default(),
                next_deadline: None,
                timer_sleeping_until: None,
                resume: ResumePoint::default(),
                counters: HostCounters::default(),
                crash_loop: CrashLoopGuard::new(&config),
                journal: VerdictJournal::new(
                    config.verdict_cache_capacity,
                    duration_ns(config.verdict_cache_ttl),
                ),
            }),
            clock,
            timer: Arc::new(Notify::new()),
            invalidations,
            loaded,
            config,
            trusted_keys,
            pump_claimed: AtomicBool::new(false),
            lookup: Mutex::new(None),
            lookup_installed: AtomicBool::new(false),
        }
    }

    /// Runs `f` under the mutex, then wakes the futures it completed.
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, wakers) = {
            // No guest call panics the host; poison would only mean a bug in
            // our own code, and the state stays consistent call by call.
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut state);
            (out, state.slots.take_wakers())
        };
        for waker in wakers {
            waker.wake();
        }
        out
    }

    /// Runs one guest call, after flushing the queued waits and cancels
    /// (their outcomes reach their own slots). A fault resets the instance
    /// (S12) and is this caller's `SinkError::GuestFault`; while quarantined
    /// the call is refused with `SinkError::CrashLoop`.
    pub(super) fn call<R>(
        &self,
        state: &mut State,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        // A failed flush has settled the queued waits; this call then
        // meets the same refusal, or runs on the fresh instance.
        let _ = self.flush(state);
        self.call_now(state, f)
    }

    /// [`Shared::call`] without the flush: for the flush itself.
    pub(super) fn call_now<R>(
        &self,
        state: &mut State,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        state.crash_loop.admit(std::time::Instant::now)?;
        let result = f(&mut state.adapter);
        if let Err(SinkError::GuestFault(why)) = &result {
            self.reset(state, why);
        }
        result
    }

    /// Fills the slots of finished waiters and re-arms the timer; returns how
    /// many completions there were.
    pub(super) fn apply(&self, state: &mut State, batch: Batch) -> u32 {
        let n = u32::try_from(batch.done.len()).unwrap_or(u32::MAX);
        for (token, outcome) in batch.done {
            state.slots.complete(token, Ok(outcome));
        }
        if !batch.remembered.is_empty() {
            state.journal.extend(batch.remembered, self.clock.now_ns());
        }
        self.note_deadline(state, batch.next_deadline);
        n
    }

    /// Records the guest's earliest deadline; wakes the timer if it must
    /// wake sooner than it planned.
    pub(super) fn note_deadline(&self, state: &mut State, next: Option<u64>) {
        state.next_deadline = next;
        if let Some(next) = next
            && state.timer_sleeping_until.is_none_or(|at| next < at)
        {
            self.timer.notify_one();
        }
    }

    /// The per-store state of a new instance of this sink.
    pub(super) fn store_state(&self) -> StoreState {
        store_state(&self.clock, &self.invalidations, &self.config)
    }
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

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the timer task see that the sink is gone and exit.
        self.timer.notify_one();
    }
}
