//! [`Core`]: what every handle of one sink shares, and the one place that
//! holds the sink's lock. The state behind the lock ([`Inner`]) is a set of
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

use super::journal::VerdictJournal;
use super::new_waits::{self, NewWait, NewWaits, Offer};
use super::queue::{OpQueue, Watched};
use super::recovery::CrashLoopGuard;
use super::timer::{self, Timed, TimerState};
use crate::adapter::{Adapter, Batch};
use crate::clock::{Clock, duration_ns};
use crate::component::Loaded;
use crate::config::SinkConfig;
use crate::error::{HostError, SinkError};
use crate::imports::StoreState;
use crate::outcome::{Decision, Outcome};
use crate::report::{IngestReport, ResumePoint};
use crate::slots::{SlotResult, Slots};
use crate::stats::{HostCounters, Stats};
use crate::trust::TrustedKey;
use approval_guest::stats::Stats as GuestStats;
use approval_guest::verdict::Verdict;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Context;
use std::time::{Duration, Instant};
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

/// What a flush did for its caller.
#[derive(Debug, Default)]
struct Flushed {
    /// Waiters the queued verdict woke.
    woken: u32,
    /// The queued verdict's typed error, if it was refused.
    verdict_error: Option<SinkError>,
}

/// A pump's hold on its sink's stream; released when dropped.
pub(crate) struct PumpClaim(Arc<Core>);

impl Drop for PumpClaim {
    fn drop(&mut self) {
        self.0.pump_claimed.store(false, Ordering::Release);
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

    /// Takes a slot and queues its registration on `id`; returns the slot's
    /// token. The guest learns of it at the next flush (S1 holds: every
    /// guest call flushes first).
    pub(super) fn queue_wait(&self, id: &str, timeout: Duration) -> u64 {
        self.lock(|inner| {
            let token = inner.slots.insert();
            let start = self.clock.now_ns();
            let timeout_ns = duration_ns(timeout);
            if inner.new_waits.as_ref().is_some_and(Offer::is_closed) {
                inner.new_waits = None;
            }
            let watch = inner.new_waits.is_some();
            inner.queue.push_wait(token, start, timeout_ns, id, watch);
            // The guest will clamp the timeout the same way.
            let capped = timeout_ns.min(duration_ns(self.config.max_timeout));
            if inner.timer.queued(start.saturating_add(capped)) {
                self.wake_timer.notify_one();
            }
            self.flush_if_full(inner);
            token
        })
    }

    /// Polls slot `token`. While waits are queued, asks the timer task to
    /// flush (once per batch) instead of flushing inline, so tasks spawned
    /// in a burst and polled by other workers do not each make a guest
    /// call for a handful of registrations under the contended lock.
    pub(super) fn poll_wait(&self, token: u64, cx: &Context<'_>) -> Option<SlotResult> {
        self.lock(|inner| {
            if !inner.queue.is_empty() && inner.timer.request_flush() {
                self.wake_timer.notify_one();
            }
            inner.slots.poll(token, cx.waker())
        })
    }

    /// Frees slot `token` (its future went away) and queues the guest's
    /// cancel if it was still waiting (S7).
    pub(super) fn cancel_wait(&self, token: u64) {
        self.lock(|inner| {
            if inner.slots.remove(token) {
                inner.queue.push_cancel(token);
                self.flush_if_full(inner);
            }
        });
    }

    /// Delivers a verdict in one guest call with the queued waits; returns
    /// how many waiters it woke, or its typed error.
    pub(super) fn deliver(&self, id: &str, decision: Decision) -> Result<u32, SinkError> {
        self.lock(|inner| {
            let Some(verdict) = Verdict::from_wire(decision as i32) else {
                inner.counters.rejected_verdicts += 1;
                return Err(SinkError::UnknownDecision(decision as i32));
            };
            self.check_id_length(id)?;
            inner.queue.push_verdict(id, verdict);
            let flushed = self.flush(inner)?;
            flushed.verdict_error.map_or(Ok(flushed.woken), Err)
        })
    }

    /// The guest's limit on a request id's length, checked before the id is
    /// copied into the queue or the guest (a huge id would otherwise grow
    /// the guest's memory for good); the same typed error the guest gives.
    pub(super) fn check_id_length(&self, id: &str) -> Result<(), SinkError> {
        if id.len() > self.config.max_request_id_bytes as usize {
            let len = u32::try_from(id.len()).unwrap_or(u32::MAX);
            return Err(SinkError::RequestIdTooLong(len));
        }
        Ok(())
    }

    /// Runs an ingest export, applies the completions it reports and moves
    /// the resume point.
    pub(super) fn ingest(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<(IngestReport, Batch), SinkError>,
    ) -> Result<IngestReport, SinkError> {
        self.lock(|inner| {
            let (report, batch) = self.call(inner, f)?;
            inner.resume = ResumePoint {
                log_id: report.log_id,
                last_seq: report.last_seq,
            };
            self.complete(inner, batch);
            Ok(report)
        })
    }

    /// One guest call under the lock (after the flush).
    pub(super) fn guest<R>(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        self.lock(|inner| self.call(inner, f))
    }

    /// Where the stream stands: kept by the host, so it survives a reset.
    pub(super) fn resume_point(&self) -> ResumePoint {
        self.lock(|inner| inner.resume)
    }

    /// Moves the guest's resume point (never back within one log) and
    /// reads back where it stands.
    pub(super) fn resume_from(&self, at: ResumePoint) -> Result<(), SinkError> {
        self.lock(|inner| {
            self.call(inner, |a| a.resume_from(at))?;
            let stats = self.call(inner, |a| a.stats())?;
            inner.resume = ResumePoint {
                log_id: stats.log_id,
                last_seq: stats.last_seq,
            };
            Ok(())
        })
    }

    /// Waits pending now; queued waits that settle at once (an early
    /// verdict, an error) must not count, so the queue is flushed first.
    pub(super) fn waiter_count(&self) -> usize {
        self.lock(|inner| {
            let _ = self.flush(inner);
            inner.slots.waiting()
        })
    }

    /// The guest's counters and the host's. If the guest call faults or is
    /// refused, the guest's counters read as zero but for the resume point,
    /// which is the host's and still reads true.
    pub(super) fn stats(&self) -> Stats {
        self.lock(|inner| {
            let guest = self.call(inner, |a| a.stats()).unwrap_or(GuestStats {
                last_seq: inner.resume.last_seq,
                log_id: inner.resume.log_id,
                ..GuestStats::default()
            });
            Stats::new(guest, inner.counters)
        })
    }

    /// Counts messages a source skipped as over `max_frame_bytes`.
    pub(super) fn note_oversized(&self, skipped: u64) {
        self.lock(|inner| inner.counters.oversized_frames += skipped);
    }

    /// Offers every new pending wait from now on to the returned watcher
    /// (replacing any earlier one).
    pub(super) fn watch_new_waits(&self) -> NewWaits {
        let (offer, waits) = new_waits::channel();
        self.lock(|inner| inner.new_waits = Some(offer));
        waits
    }

    /// Claims this sink's stream for a pump; `None` if a pump holds it.
    pub(super) fn claim_pump(self: &Arc<Self>) -> Option<PumpClaim> {
        let taken = self.pump_claimed.swap(true, Ordering::AcqRel);
        (!taken).then(|| PumpClaim(Arc::clone(self)))
    }

    /// Makes the next guest call trap (tests of S12).
    #[cfg(feature = "fault-injection")]
    pub(super) fn inject_trap(&self) {
        self.lock(|inner| inner.adapter.inject_trap());
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
        inner.counters.guest_calls += 1;
        let result = f(&mut inner.adapter);
        if let Err(SinkError::GuestFault(why)) = &result {
            self.reset(inner, why);
        }
        result
    }

    fn flush_if_full(&self, inner: &mut Inner) {
        if inner.queue.is_full() {
            // Errors have reached the queued waits' slots.
            let _ = self.flush(inner);
        }
    }

    /// Sends the queue to the guest, if anything is queued, and settles
    /// what it finished; then offers the watched waits still pending. A
    /// failed flush (a fault, which resets the instance, or a quarantine)
    /// settles every queued wait with `Reset` or the error, and returns it.
    fn flush(&self, inner: &mut Inner) -> Result<Flushed, SinkError> {
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
                    match taken.token(op) {
                        Some(token) => {
                            inner.slots.complete(token, Err(error));
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
                for token in taken.registrations() {
                    inner.slots.complete(token, Err(e.clone()));
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
            if !inner.slots.is_waiting(w.token) {
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

    /// Fills the slots of finished waiters, keeps the journal they wrote and
    /// tells the timer the guest's next deadline.
    fn complete(&self, inner: &mut Inner, batch: Batch) {
        for (token, outcome) in batch.done {
            inner.slots.complete(token, Ok(outcome));
        }
        if !batch.remembered.is_empty() {
            inner.journal.extend(batch.remembered, self.clock.now_ns());
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
        inner.counters.resets += 1;
        tracing::error!(fault = %why, "approval-sink guest faulted; resetting its instance");
        let journal = inner.journal.bytes();
        let state = store_state(&self.clock, &self.invalidations, &self.config);
        let resumed = Adapter::new(&self.loaded, state, &self.config, &self.trusted_keys).and_then(
            |mut a| {
                a.restore_verdicts(&journal)
                    .and_then(|_| a.resume_from(inner.resume))
                    .map_err(|e| HostError::Instantiate(e.to_string()))?;
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
        for token in inner.slots.waiting_tokens() {
            inner.slots.complete(token, Ok(Outcome::Reset));
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
