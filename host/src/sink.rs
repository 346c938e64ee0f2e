//! [`ApprovalSink`]: the host API over one guest instance.
//!
//! # How a wait works
//!
//! All handles of a sink share one [`Adapter`] (the wasmtime `Store`) behind a
//! mutex. [`ApprovalSink::wait`] takes a host slot, calls the guest's
//! `register` on the caller's thread and returns a [`Wait`] future, so the
//! waiter exists before the future is first polled (S1) and
//! [`ApprovalSink::waiter_count`] is exact at once. The future only watches
//! its slot; completions reported by the guest (from `resolve`, `expire`,
//! `ingest-frames`) fill slots and wake their futures. Dropping an unfinished
//! [`Wait`] frees its slot and calls `cancel` (S7).
//!
//! One timer task per sink sleeps on the sink's [`Clock`] until the earliest
//! deadline the guest reported, then calls `expire`. The mutex is never held
//! across an `.await`.
//!
//! # Faults (S12)
//!
//! If a guest call traps, the store is dropped, a fresh instance is made from
//! the same `InstancePre` and config, and every outstanding wait resolves as
//! [`Outcome::Reset`] (`Decision::Pending` through `wait_for_approval`).

use crate::adapter::{Adapter, Fault};
use crate::bindings::{Batch, IngestReport, Registered, WitDecision};
use crate::clock::{Clock, SystemClock, duration_ns};
use crate::component::{self, Loaded};
use crate::config::SinkConfig;
use crate::error::{HostError, SinkError};
use crate::imports::StoreState;
use crate::outcome::{Decision, Outcome};
use crate::slots::Slots;
use crate::sources::{EventSource, Pump, PumpConfig};
use crate::stats::Stats;
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use wasmtime::StoreLimitsBuilder;

/// How many policy invalidations a slow listener may lag behind.
const INVALIDATION_BUFFER: usize = 1024;

/// The seed's event interface: what a gateway's invalidation stream calls.
pub trait InvalidationSink {
    /// A reviewer decided on `request_id`.
    fn on_approval_resolved(&self, request_id: &str, decision: Decision);
    /// An agent's policy changed (empty id: every agent).
    fn on_policy_invalidated(&self, agent_id: &str);
}

/// The approval-waiter registry, running in a sandboxed component.
///
/// Cheap to clone (clones share one instance); `Send + Sync`; usable from any
/// thread and any tokio runtime flavour.
#[derive(Clone)]
pub struct ApprovalSink {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    /// Wakes the timer task: an earlier deadline, or the sink went away.
    timer: Arc<Notify>,
    invalidations: broadcast::Sender<String>,
    loaded: Arc<Loaded>,
    config: SinkConfig,
}

struct State {
    adapter: Adapter,
    slots: Slots,
    /// Earliest pending deadline the guest reported.
    next_deadline: Option<u64>,
    /// The deadline the timer task is sleeping until, if any.
    armed: Option<u64>,
    /// The stream's resume point as of the last ingest, carried over to a
    /// fresh instance after a reset (S12).
    last_seq: u64,
    resets: u64,
    traps: u64,
    /// When recent resets happened (wall time), for crash-loop detection.
    recent_resets: std::collections::VecDeque<std::time::Instant>,
    /// Guest calls are refused until then (a crash loop was detected).
    quarantine_until: Option<std::time::Instant>,
    /// The next quarantine's length; doubles per crash loop, up to a minute.
    quarantine: Duration,
}

/// Builds an [`ApprovalSink`]; every option has a default.
pub struct ApprovalSinkBuilder {
    clock: Option<Arc<dyn Clock>>,
    component_file: Option<PathBuf>,
    component_bytes: Option<Vec<u8>>,
    loaded: Option<Arc<component::Loaded>>,
    config: SinkConfig,
}

impl ApprovalSinkBuilder {
    /// The clock the guest reads and the timer sleeps on. Default
    /// [`SystemClock`] created at `build()`.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Loads this component file (an `approval-registry` build) instead of
    /// the embedded one.
    pub fn component_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.component_file = Some(path.into());
        self
    }

    /// Loads these component bytes instead of the embedded component.
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.component_bytes = Some(bytes.into());
        self
    }

    /// Uses an already compiled and linked component, e.g. one from
    /// [`component::load_cached`](crate::component::load_cached) (a
    /// precompiled artifact) or shared by many sinks.
    pub fn loaded(mut self, loaded: Arc<component::Loaded>) -> Self {
        self.loaded = Some(loaded);
        self
    }

    /// Limits and cache settings. Default [`SinkConfig::default`].
    pub fn config(mut self, config: SinkConfig) -> Self {
        self.config = config;
        self
    }

    /// Compiles (once per process for the embedded component), instantiates
    /// and configures the sink, and starts its timer task on the current
    /// tokio runtime, or on a small thread of its own outside one.
    pub fn build(self) -> Result<ApprovalSink, HostError> {
        let loaded = match (self.loaded, self.component_bytes, self.component_file) {
            (Some(loaded), _, _) => loaded,
            (None, Some(bytes), _) => component::load(&bytes)?,
            (None, None, Some(path)) => {
                let bytes = std::fs::read(&path)
                    .map_err(|source| HostError::ComponentFile { path, source })?;
                component::load(&bytes)?
            }
            (None, None, None) => component::embedded()?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let (invalidations, _) = broadcast::channel(INVALIDATION_BUFFER);
        let state = store_state(&clock, &invalidations, &self.config);
        let adapter = Adapter::new(&loaded, state, &self.config)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                adapter,
                slots: Slots::new(),
                next_deadline: None,
                armed: None,
                last_seq: 0,
                resets: 0,
                traps: 0,
                recent_resets: std::collections::VecDeque::new(),
                quarantine_until: None,
                quarantine: self.config.crash_loop_backoff,
            }),
            clock,
            timer: Arc::new(Notify::new()),
            invalidations,
            loaded,
            config: self.config,
        });
        spawn_timer(&shared);
        Ok(ApprovalSink { shared })
    }
}

fn store_state(
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

impl Default for ApprovalSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ApprovalSink {
    /// A sink on the embedded component with [`SystemClock`] and default
    /// limits, like the original's `new()`.
    ///
    /// # Panics
    ///
    /// If the embedded component cannot be compiled or instantiated, which is
    /// a build defect (the test suite instantiates it), not a runtime input.
    pub fn new() -> Self {
        match Self::builder().build() {
            Ok(sink) => sink,
            Err(e) => panic!("the embedded approval-sink component failed to start: {e}"),
        }
    }

    /// A builder for a sink with another clock, component or limits.
    pub fn builder() -> ApprovalSinkBuilder {
        ApprovalSinkBuilder {
            clock: None,
            component_file: None,
            component_bytes: None,
            loaded: None,
            config: SinkConfig::default(),
        }
    }

    /// Waits for a verdict on `request_id`, returning `Decision::Pending`
    /// when `timeout` passes, the wait fails, or the guest is reset: never
    /// `Denied` without a reviewer. The waiter is registered before this
    /// returns (S1); dropping the future cancels it (S7).
    pub fn wait_for_approval(
        &self,
        request_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Decision> + Send + 'static + use<> {
        let wait = self.wait(request_id, timeout);
        async move {
            match wait.await {
                Ok(outcome) => outcome.decision(),
                Err(e) => {
                    tracing::warn!(error = %e, "wait failed; falling back to Pending");
                    Decision::Pending
                }
            }
        }
    }

    /// Like [`wait_for_approval`](Self::wait_for_approval), but says how the
    /// wait ended and reports bad requests as typed errors.
    pub fn wait(&self, request_id: &str, timeout: Duration) -> Wait {
        let mut state = self.shared.lock();
        let token = state.slots.insert();
        let result = self.shared.call(&mut state, |a| {
            a.register(token, request_id, duration_ns(timeout))
        });
        let early = match result {
            Ok(Ok(Registered::Pending(next))) => {
                self.shared.note_deadline(&mut state, Some(next));
                return Wait {
                    shared: Arc::clone(&self.shared),
                    token: Some(token),
                    early: None,
                };
            }
            Ok(Ok(Registered::Settled(outcome))) => Ok(outcome.into()),
            Ok(Err(e)) | Err(e) => Err(e),
        };
        state.slots.remove(token);
        Wait {
            shared: Arc::clone(&self.shared),
            token: None,
            early: Some(early),
        }
    }

    /// Delivers a verdict: every waiter on `request_id` gets it, or it is
    /// cached for a wait that comes later (S4). Returns how many waiters it
    /// woke. `Pending`/`Unspecified` are rejected and counted (S8).
    pub fn deliver(&self, request_id: &str, decision: Decision) -> Result<u32, SinkError> {
        let verdict = match decision {
            Decision::Approved => WitDecision::Approved,
            Decision::Denied => WitDecision::Denied,
            // Not verdicts: hand them to the guest as the stream would, so it
            // counts them as malformed in the one place stats come from.
            Decision::Unspecified | Decision::Pending => {
                let report = self.ingest_event(Event::ApprovalResolved(ApprovalResolved {
                    request_id: request_id.to_owned(),
                    decision: decision as i32,
                    ..Default::default()
                }))?;
                return match report.errors.into_iter().next() {
                    Some(e) => Err(e.into()),
                    None => Err(SinkError::UnknownDecision(decision as i32)),
                };
            }
        };
        let mut state = self.shared.lock();
        let batch = self
            .shared
            .call(&mut state, |a| a.resolve(request_id, verdict))??;
        Ok(self.shared.apply(&mut state, batch))
    }

    /// Feeds one encoded `InvalidationEvent` (no length prefix). Its verdict
    /// or invalidation takes effect before this returns. Independent of any
    /// stream a source is feeding (a partial frame there is left alone).
    pub fn push_frame(&self, frame: &[u8]) -> Result<(), SinkError> {
        let report = self.ingest_with(|a| a.apply_frame(frame))?;
        match report.errors.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Feeds the next chunk of a length-delimited frame stream; frames may
    /// straddle chunks. Completions take effect before this returns. One
    /// stream at a time per sink: a pump owns it while it runs.
    pub fn ingest_bytes(&self, bytes: &[u8]) -> Result<IngestReport, SinkError> {
        self.ingest_with(|a| a.ingest(bytes))
    }

    /// Runs an ingest export and applies the completions it reports.
    fn ingest_with(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<IngestReport, Fault>,
    ) -> Result<IngestReport, SinkError> {
        let mut state = self.shared.lock();
        let mut report = self.shared.call(&mut state, |a| f(a).map(Ok))??;
        state.last_seq = report.last_seq;
        let batch = std::mem::take(&mut report.batch.done);
        let next = report.batch.next_deadline;
        self.shared.apply(
            &mut state,
            Batch {
                done: batch,
                next_deadline: next,
            },
        );
        Ok(report)
    }

    /// Ends the byte stream fed through [`ingest_bytes`](Self::ingest_bytes)
    /// (its source closed): a partial frame left behind is dropped and
    /// counted as malformed, so the next stream starts clean. Returns the
    /// bytes dropped.
    pub fn end_stream(&self) -> u32 {
        let mut state = self.shared.lock();
        self.shared
            .call(&mut state, |a| a.reset_stream().map(Ok))
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0)
    }

    /// Feeds `source` into this sink on the current tokio runtime, with the
    /// default reconnect policy, until the returned [`Pump`] is dropped.
    pub fn pump(&self, source: impl EventSource) -> Pump {
        self.pump_with(source, PumpConfig::default())
    }

    /// Like [`pump`](Self::pump), with a reconnect policy.
    pub fn pump_with(&self, source: impl EventSource, config: PumpConfig) -> Pump {
        crate::sources::pump::start(self.clone(), source, config)
    }

    fn ingest_event(&self, event: Event) -> Result<IngestReport, SinkError> {
        let frame = InvalidationEvent {
            seq: 0,
            event: Some(event),
        }
        .encode_to_vec();
        self.ingest_with(|a| a.apply_frame(&frame))
    }

    /// A receiver of policy invalidations (S10): the agent id, empty for all.
    pub fn subscribe_invalidations(&self) -> broadcast::Receiver<String> {
        self.shared.invalidations.subscribe()
    }

    /// Waits pending now. Exact as soon as `wait` returns or an outcome is
    /// delivered; equal to `stats().await.waiters` whenever the sink is idle.
    pub fn waiter_count(&self) -> usize {
        self.shared.lock().slots.waiting()
    }

    /// The guest's counters plus the host's (resets, traps).
    pub async fn stats(&self) -> Stats {
        let mut state = self.shared.lock();
        let guest = self.shared.call(&mut state, |a| a.stats().map(Ok));
        match guest {
            Ok(Ok(s)) => Stats::from_guest(s, state.resets, state.traps),
            // The call faulted (or is refused): the host's counts, read after
            // the reset it caused.
            _ => Stats {
                resets: state.resets,
                traps: state.traps,
                ..Stats::default()
            },
        }
    }

    /// Makes the next guest call trap, as a guest bug would: for tests of
    /// trap recovery (S12). Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn inject_trap(&self) {
        self.shared.lock().adapter.inject_trap();
    }

    /// The limits this sink runs with.
    pub fn config(&self) -> SinkConfig {
        self.shared.config
    }

    /// Size in bytes of the component this sink runs.
    pub fn component_size(&self) -> usize {
        self.shared.loaded.size
    }
}

impl InvalidationSink for ApprovalSink {
    fn on_approval_resolved(&self, request_id: &str, decision: Decision) {
        if let Err(e) = self.deliver(request_id, decision) {
            tracing::warn!(request_id, ?decision, error = %e, "verdict rejected");
        }
    }

    fn on_policy_invalidated(&self, agent_id: &str) {
        let event = Event::PolicyInvalidated(PolicyInvalidated {
            agent_id: agent_id.to_owned(),
        });
        if let Err(e) = self.ingest_event(event) {
            tracing::warn!(agent_id, error = %e, "policy invalidation rejected");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No guest call panics the host; poison would only mean a bug in our
        // own code, and the state stays consistent call by call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one guest call. A fault resets the instance (S12) and becomes
    /// `SinkError::GuestFault` for this caller.
    fn call<R>(
        &self,
        state: &mut State,
        f: impl FnOnce(&mut Adapter) -> Result<Result<R, SinkError>, Fault>,
    ) -> Result<Result<R, SinkError>, SinkError> {
        if let Some(until) = state.quarantine_until {
            let now = std::time::Instant::now();
            if now < until {
                return Err(SinkError::CrashLoop(until - now));
            }
            state.quarantine_until = None;
        }
        match f(&mut state.adapter) {
            Ok(r) => Ok(r),
            Err(fault) => {
                self.reset(state, &fault);
                Err(SinkError::GuestFault(fault.0))
            }
        }
    }

    /// Replaces a faulted instance and resolves every outstanding wait as
    /// `Reset`.
    fn reset(&self, state: &mut State, fault: &Fault) {
        state.traps += 1;
        tracing::error!(fault = %fault.0, "approval-sink guest faulted; resetting its instance");
        let fresh = store_state(&self.clock, &self.invalidations, &self.config);
        let resumed = Adapter::new(&self.loaded, fresh, &self.config).and_then(|mut a| {
            a.resume_from(state.last_seq)
                .map(|()| a)
                .map_err(|f| HostError::Instantiate(f.0))
        });
        match resumed {
            Ok(adapter) => state.adapter = adapter,
            // The old store stays; the next call faults again and retries.
            Err(e) => tracing::error!(error = %e, "could not re-instantiate the guest"),
        }
        state.resets += 1;
        self.note_reset(state);
        for token in state.slots.waiting_tokens() {
            state.slots.complete(token, Outcome::Reset);
        }
        state.next_deadline = None;
    }

    /// Detects a crash loop: too many resets in the window quarantine the
    /// guest for a backoff that doubles each time, up to a minute.
    fn note_reset(&self, state: &mut State) {
        const LONGEST: Duration = Duration::from_secs(60);
        let now = std::time::Instant::now();
        let window = self.config.crash_loop_window;
        while state
            .recent_resets
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            state.recent_resets.pop_front();
        }
        if state.recent_resets.is_empty() {
            state.quarantine = self.config.crash_loop_backoff;
        }
        state.recent_resets.push_back(now);
        if state.recent_resets.len() > self.config.crash_loop_resets as usize {
            let pause = state.quarantine;
            tracing::error!(
                resets = state.recent_resets.len(),
                ?window,
                ?pause,
                "approval-sink guest is crash-looping; refusing calls"
            );
            state.quarantine_until = Some(now + pause);
            state.quarantine = (pause * 2).min(LONGEST);
            state.recent_resets.clear();
        }
    }

    /// Fills the slots of finished waiters and re-arms the timer; returns how
    /// many completions there were.
    fn apply(&self, state: &mut State, batch: Batch) -> u32 {
        let n = u32::try_from(batch.done.len()).unwrap_or(u32::MAX);
        for c in batch.done {
            state.slots.complete(c.waiter, c.outcome.into());
        }
        self.note_deadline(state, batch.next_deadline);
        n
    }

    /// Records the guest's earliest deadline; wakes the timer if it must
    /// wake sooner than it planned.
    fn note_deadline(&self, state: &mut State, next: Option<u64>) {
        state.next_deadline = next;
        if let Some(next) = next
            && state.armed.is_none_or(|armed| next < armed)
        {
            self.timer.notify_one();
        }
    }

    /// The timer fired: expire everything due.
    fn expire(&self) {
        let mut state = self.lock();
        if let Ok(Ok(batch)) = self.call(&mut state, |a| a.expire().map(Ok)) {
            self.apply(&mut state, batch);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the timer task see that the sink is gone and exit.
        self.timer.notify_one();
    }
}

fn spawn_timer(shared: &Arc<Shared>) {
    let task = run_timer(
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
async fn run_timer(shared: Weak<Shared>, wake: Arc<Notify>, clock: Arc<dyn Clock>) {
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
            let mut state = shared.lock();
            state.armed = state.next_deadline;
            state.next_deadline
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

/// A registered wait; resolves to how it ended. Dropping it before it
/// completes cancels the waiter in the guest (S7).
#[must_use = "a wait is cancelled when dropped"]
pub struct Wait {
    shared: Arc<Shared>,
    /// The slot, while the guest holds the waiter.
    token: Option<u64>,
    /// Settled at registration (early verdict, or an error).
    early: Option<Result<Outcome, SinkError>>,
}

impl Future for Wait {
    type Output = Result<Outcome, SinkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.early.take() {
            return Poll::Ready(result);
        }
        let Some(token) = self.token else {
            return Poll::Ready(Err(SinkError::Finished));
        };
        let outcome = self.shared.lock().slots.poll(token, cx.waker());
        match outcome {
            Some(outcome) => {
                self.token = None;
                Poll::Ready(Ok(outcome))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.slots.remove(token) {
            let _ = shared.call(&mut state, |a| a.cancel(token).map(Ok));
        }
    }
}
