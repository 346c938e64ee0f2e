//! wit-bindgen glue: WIT exports onto [`Registry`] and [`frames`].

use crate::frames::{self, FrameDecoder, FrameError, MAX_REPORTED_ERRORS};
use crate::ops::{self, Op, OpReader};
use crate::registry::{self, Registry, RegistryError, Reply, TimeSource};
use crate::trust;
use crate::verdict::{self, Verdict};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

#[cfg(not(feature = "plugin"))]
wit_bindgen::generate!({
    path: "../wit",
    world: "approval-registry",
});

#[cfg(feature = "plugin")]
wit_bindgen::generate!({
    path: "../wit",
    world: "approval-plugin",
});

use assembly::approval::types::{
    Applied, AuthFailure, Batch, Completion, Config, Decider, Decision, IngestReport, OpError,
    Outcome, Registered, SinkError, SinkStats, TrustedKey,
};
use exports::assembly::approval::registry::Guest as RegistryGuest;

/// Tables are pre-sized for this many waiters at `configure` (capped by
/// `max-waiters`), so steady-state growth does not double them in place.
const PRESIZE_WAITERS: usize = 1024;

/// The host's monotonic clock import, read at most once per registry
/// access: one `with_registry` scope (an export call, or one chunk of an
/// async stream) is one instant. Every cached early verdict reads the clock,
/// so without this an `ingest-frames` call of 10,000 verdicts made 10,000
/// host calls (BENCHMARKS.md, "Levers tried").
struct HostClock;

impl TimeSource for HostClock {
    fn now_ns(&self) -> u64 {
        NOW.with(|now| {
            now.get().unwrap_or_else(|| {
                let t = assembly::approval::clock::now();
                now.set(Some(t));
                t
            })
        })
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry<HostClock>> = RefCell::new(Registry::new(HostClock));
    static DECODER: RefCell<FrameDecoder> = RefCell::new(FrameDecoder::new());
    /// The instant of the current `with_registry` scope, once read.
    static NOW: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
}

/// Runs `f` on this instance's registry. Never called re-entrantly: the
/// component model forbids re-entering an instance, and no borrow is held
/// across an `.await`.
fn with_registry<R>(f: impl FnOnce(&mut Registry<HostClock>) -> R) -> R {
    let out = REGISTRY.with(|r| f(&mut r.borrow_mut()));
    // The next scope (a later call, or this task after an `.await`) reads the
    // clock afresh.
    NOW.with(|now| now.set(None));
    out
}

struct Component;

impl From<Verdict> for Decision {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Approved => Decision::Approved,
            Verdict::Denied => Decision::Denied,
        }
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Approved => Verdict::Approved,
            Decision::Denied => Verdict::Denied,
        }
    }
}

impl From<verdict::Outcome> for Outcome {
    fn from(o: verdict::Outcome) -> Self {
        match o {
            verdict::Outcome::Decided(v) => Outcome::Decided(v.into()),
            verdict::Outcome::TimedOut => Outcome::TimedOut,
            verdict::Outcome::Cancelled => Outcome::Cancelled,
        }
    }
}

impl From<RegistryError> for SinkError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::RequestIdTooLong(n) => SinkError::RequestIdTooLong(n),
            RegistryError::RequestIdEmpty => SinkError::RequestIdEmpty,
            RegistryError::TooManyWaiters(n) => SinkError::TooManyWaiters(n),
            RegistryError::DuplicateWaiter(w) => SinkError::DuplicateWaiter(w),
            RegistryError::InvalidConfig(why) => SinkError::InvalidConfig(why.into()),
            RegistryError::ConflictingVerdict => SinkError::ConflictingVerdict,
            RegistryError::Unauthenticated(why) => SinkError::Unauthenticated(why.into()),
        }
    }
}

impl From<trust::AuthFailure> for AuthFailure {
    fn from(f: trust::AuthFailure) -> Self {
        match f {
            trust::AuthFailure::Unsigned => AuthFailure::Unsigned,
            trust::AuthFailure::UntrustedKey => AuthFailure::UntrustedKey,
            trust::AuthFailure::BadSignature => AuthFailure::BadSignature,
        }
    }
}

impl From<FrameError> for SinkError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge(n) => SinkError::FrameTooLarge(n),
            FrameError::BadPrefix => {
                SinkError::MalformedFrame("length prefix over 10 bytes".into())
            }
            FrameError::Malformed(why) => SinkError::MalformedFrame(why),
            FrameError::UnknownDecision(d) => SinkError::UnknownDecision(d),
            FrameError::BadRequestId(e) => e.into(),
            FrameError::Conflicting => SinkError::ConflictingVerdict,
            FrameError::Unauthenticated(why) => SinkError::Unauthenticated(why.into()),
        }
    }
}

/// The completions finished since the last drain, and the next deadline.
fn drain(r: &mut Registry<HostClock>) -> Batch {
    let done = r
        .take_done()
        .into_iter()
        .map(|c| Completion {
            waiter: c.waiter,
            outcome: c.outcome.into(),
        })
        .collect();
    Batch {
        done,
        next_deadline: r.next_deadline(),
        remembered: r.take_journal(),
    }
}

/// The typed error of an operation the guest could not read.
fn op_error(e: ops::OpError) -> SinkError {
    match e {
        ops::OpError::BadUtf8 => SinkError::MalformedFrame("operation: id is not UTF-8".into()),
        ops::OpError::UnknownDecision(d) => SinkError::UnknownDecision(i32::from(d)),
        ops::OpError::Truncated => {
            SinkError::MalformedFrame("operation buffer truncated or unknown tag".into())
        }
    }
}

/// Tells the host about a policy invalidation (S10).
fn forward_invalidation(agent_id: &str) {
    assembly::approval::host_events::policy_invalidated(agent_id);
}

/// Totals of one ingest, over frames and chunks.
#[derive(Default)]
struct IngestTotals {
    events: u32,
    duplicates: u32,
    rejected: u32,
    errors: Vec<SinkError>,
}

impl IngestTotals {
    /// Feeds `bytes` through `decoder`, applying each frame to the registry.
    fn feed(&mut self, decoder: &mut FrameDecoder, bytes: &[u8]) -> Result<(), FrameError> {
        with_registry(|r| {
            frames::ingest(r, decoder, bytes, &mut forward_invalidation, |result| {
                self.record(result)
            })
        })
    }

    /// Applies one whole frame body, outside any stream.
    fn apply(&mut self, frame: &[u8]) {
        let result = with_registry(|r| frames::apply_frame(r, frame, &mut forward_invalidation));
        self.record(result);
    }

    fn record(&mut self, result: Result<frames::Applied, FrameError>) {
        match result {
            Ok(frames::Applied::Duplicate) => self.duplicates = self.duplicates.saturating_add(1),
            Ok(_) => self.events = self.events.saturating_add(1),
            Err(err) => {
                self.rejected = self.rejected.saturating_add(1);
                if self.errors.len() < MAX_REPORTED_ERRORS {
                    self.errors.push(err.into());
                }
            }
        }
    }

    /// The report of one ingest call; drains the completions it caused.
    fn report(self, fatal: Option<FrameError>) -> IngestReport {
        with_registry(|r| {
            let stats = r.stats();
            IngestReport {
                batch: drain(r),
                events: self.events,
                duplicates: self.duplicates,
                rejected: self.rejected,
                errors: self.errors,
                fatal: fatal.map(Into::into),
                last_seq: stats.last_seq,
                log_id: stats.log_id,
            }
        })
    }
}

impl RegistryGuest for Component {
    fn default_config() -> Config {
        let d = crate::config::Config::DEFAULT;
        Config {
            max_waiters: d.max_waiters,
            max_request_id_bytes: d.max_request_id_bytes,
            max_frame_bytes: d.max_frame_bytes,
            verdict_cache_capacity: d.verdict_cache_capacity,
            verdict_cache_ttl_ns: d.verdict_cache_ttl_ns,
            max_timeout_ns: d.max_timeout_ns,
            hash_seed: d.hash_seed,
        }
    }

    fn configure(cfg: Config) -> Result<(), SinkError> {
        let config = crate::config::Config {
            max_waiters: cfg.max_waiters,
            max_request_id_bytes: cfg.max_request_id_bytes,
            max_frame_bytes: cfg.max_frame_bytes,
            verdict_cache_capacity: cfg.verdict_cache_capacity,
            verdict_cache_ttl_ns: cfg.verdict_cache_ttl_ns,
            max_timeout_ns: cfg.max_timeout_ns,
            hash_seed: cfg.hash_seed,
        };
        with_registry(|r| r.configure(config, PRESIZE_WAITERS)).map_err(Into::into)
    }

    fn set_trusted_keys(keys: Vec<TrustedKey>) -> Result<(), SinkError> {
        let keys = keys
            .iter()
            .map(|k| (k.id.as_str(), k.public_key.as_slice()));
        with_registry(|r| r.set_trusted_keys(keys)).map_err(Into::into)
    }

    fn decided_by(request_id: String) -> Option<Decider> {
        let (verdict, decider) = with_registry(|r| r.decided_by(&request_id))?;
        let decider = decider.unwrap_or_default();
        Some(Decider {
            decision: verdict.into(),
            reviewer: decider.reviewer,
            key_id: decider.key_id,
            resolved_at_unix_ms: decider.resolved_at_unix_ms,
        })
    }

    fn register(waiter: u64, request_id: String, timeout_ns: u64) -> Result<Registered, SinkError> {
        let registered =
            with_registry(|r| r.register(waiter, &request_id, timeout_ns, Reply::Batched))?;
        Ok(match registered {
            registry::Registered::Settled(o) => Registered::Settled(o.into()),
            registry::Registered::Pending(next) => Registered::Pending(next),
        })
    }

    fn cancel(waiter: u64) -> bool {
        with_registry(|r| r.cancel(waiter))
    }

    fn resolve(request_id: String, decision: Decision) -> Result<Batch, SinkError> {
        with_registry(|r| {
            // Not journaled: the caller knows the verdict it delivered and
            // journals it itself (S18), so no journal bytes cross back.
            r.resolve(&request_id, decision.into())?;
            Ok(drain(r))
        })
    }

    fn apply(now: u64, buf: Vec<u8>) -> Applied {
        // This scope's instant, from the host (see the WIT).
        NOW.with(|n| n.set(Some(now)));
        with_registry(|r| {
            let mut errors = Vec::new();
            let mut woken = 0u32;
            for (i, op) in OpReader::new(&buf).enumerate() {
                let result = match op {
                    Ok(Op::Register {
                        waiter,
                        start_ns,
                        timeout_ns,
                        id,
                    }) => r
                        .register_from(waiter, id, start_ns, timeout_ns, Reply::Batched)
                        .map(|registered| {
                            // A settled registration is reported like any
                            // other finished waiter, in `batch.done`.
                            if let registry::Registered::Settled(outcome) = registered {
                                r.push_done(waiter, outcome);
                            }
                        })
                        .map_err(SinkError::from),
                    Ok(Op::Cancel { waiter }) => {
                        r.cancel(waiter);
                        Ok(())
                    }
                    Ok(Op::Resolve { id, verdict }) => r
                        .resolve(id, verdict)
                        .map(|n| woken = woken.saturating_add(n))
                        .map_err(SinkError::from),
                    Err(e) => Err(op_error(e)),
                };
                if let Err(error) = result {
                    errors.push(OpError {
                        op: u32::try_from(i).unwrap_or(u32::MAX),
                        error,
                    });
                }
            }
            Applied {
                batch: drain(r),
                errors,
                woken,
            }
        })
    }

    fn expire() -> Batch {
        with_registry(|r| {
            r.expire();
            drain(r)
        })
    }

    fn ingest_frames(bytes: Vec<u8>) -> IngestReport {
        let mut totals = IngestTotals::default();
        let fatal = DECODER
            .with(|d| totals.feed(&mut d.borrow_mut(), &bytes))
            .err();
        totals.report(fatal)
    }

    fn apply_frame(frame: Vec<u8>) -> IngestReport {
        let mut totals = IngestTotals::default();
        totals.apply(&frame);
        totals.report(None)
    }

    fn reset_stream() -> u32 {
        let dropped =
            DECODER.with(|d| with_registry(|r| frames::end_stream(r, &mut d.borrow_mut())));
        u32::try_from(dropped).unwrap_or(u32::MAX)
    }

    fn restore_verdicts(journal: Vec<u8>) -> u32 {
        with_registry(|r| r.restore(&journal))
    }

    fn resume_from(log_id: u64, seq: u64) {
        with_registry(|r| r.window().resume_from(log_id, seq));
    }

    fn stats() -> SinkStats {
        let s = with_registry(|r| r.stats());
        macro_rules! to_wit {
            ([$s:ident] $($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
                SinkStats { $($name: $s.$name,)* }
            };
        }
        crate::for_each_stat!(to_wit, s)
    }
}

#[cfg(feature = "plugin")]
mod sink {
    //! The async face: one component task per wait, and one timer for all
    //! of them (#15 item 5).
    //!
    //! # The timer
    //!
    //! One `timer.sleep-until` call at a time serves every async wait of
    //! the instance (before, each wait had its own, so a 100k storm made
    //! 100k host sleeps). The timer runs inside one wait's task, its
    //! *owner*, alongside that wait: it sleeps until the registry's
    //! earliest deadline, expires what is due (each expired async wait
    //! gets its outcome on its oneshot, batched ones are reported by the
    //! next `registry` call), and sleeps again. A registration with an
    //! earlier deadline wakes it to re-arm. When the owner's own wait ends,
    //! it hands the timer to one waiting task (they stand by with their
    //! wakers), so no task outlives its wait and no sleep is left behind
    //! for a wait that finished. Owner and standby are released on drop,
    //! so a task cancelled by its host hands over too.

    use super::*;
    use alloc::collections::BTreeMap;
    use core::cell::RefCell;
    use core::task::{Poll, Waker};
    use futures::channel::oneshot;
    use futures::future::{self, Either};
    use wit_bindgen::{StreamReader, StreamResult};

    /// Bytes asked for per stream read.
    const READ_CHUNK: usize = 64 * 1024;

    /// The instance's one async timer.
    #[derive(Default)]
    struct Timer {
        /// A wait's task runs the timer now.
        owned: bool,
        /// The deadline the owner sleeps until.
        armed: Option<u64>,
        /// An earlier deadline was registered: the owner must re-arm.
        rearm: bool,
        /// Wakes the owner for `rearm`.
        owner: Option<Waker>,
        /// Waits that can take the timer over, by token.
        standby: BTreeMap<u64, Waker>,
    }

    thread_local! {
        static TIMER: RefCell<Timer> = RefCell::new(Timer::default());
    }

    fn with_timer<R>(f: impl FnOnce(&mut Timer) -> R) -> R {
        TIMER.with(|t| f(&mut t.borrow_mut()))
    }

    /// A new async wait's deadline: wakes the owner if it must wake sooner.
    fn note_deadline(deadline: u64) {
        let owner = with_timer(|t| {
            if t.owned && t.armed.is_none_or(|armed| deadline < armed) {
                t.rearm = true;
                t.owner.take()
            } else {
                None
            }
        });
        if let Some(w) = owner {
            w.wake();
        }
    }

    /// Holds the timer; hands it to a standby wait when dropped.
    struct Owner;

    impl Drop for Owner {
        fn drop(&mut self) {
            let next = with_timer(|t| {
                t.owned = false;
                t.armed = None;
                t.rearm = false;
                t.owner = None;
                t.standby.pop_first().map(|(_, w)| w)
            });
            if let Some(w) = next {
                w.wake();
            }
        }
    }

    /// A wait standing by for the timer; leaves the standby list on drop.
    struct Standby(u64);

    impl Standby {
        /// Ready (as the owner) once the timer is free.
        async fn claim(&self) -> Owner {
            let token = self.0;
            future::poll_fn(|cx| {
                with_timer(|t| {
                    if t.owned {
                        t.standby.insert(token, cx.waker().clone());
                        Poll::Pending
                    } else {
                        t.owned = true;
                        t.standby.remove(&token);
                        Poll::Ready(())
                    }
                })
            })
            .await;
            Owner
        }
    }

    impl Drop for Standby {
        fn drop(&mut self) {
            with_timer(|t| t.standby.remove(&self.0));
        }
    }

    /// Ready when a registration asked the owner to re-arm.
    async fn rearm_requested() {
        future::poll_fn(|cx| {
            with_timer(|t| {
                if core::mem::take(&mut t.rearm) {
                    Poll::Ready(())
                } else {
                    t.owner = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// The owner's timer loop. Returns once the owner's own waiter is no
    /// longer pending (its outcome is then on its oneshot), so an owner
    /// that timed out hands over without starting another sleep.
    async fn run_timer(own: u64) {
        loop {
            let Some(next) = with_registry(|r| r.deadline_of(own).map(|_| r.next_deadline()))
            else {
                return;
            };
            with_timer(|t| t.armed = next);
            match next {
                None => rearm_requested().await,
                Some(deadline) => {
                    let sleep = core::pin::pin!(assembly::approval::timer::sleep_until(deadline));
                    let rearm = core::pin::pin!(rearm_requested());
                    if let Either::Left(((), _)) = future::select(sleep, rearm).await {
                        with_registry(|r| r.expire());
                    }
                }
            }
        }
    }

    impl exports::assembly::approval::sink::Guest for Component {
        async fn wait_for_approval(
            waiter: u64,
            request_id: String,
            timeout_ns: u64,
        ) -> Result<Outcome, SinkError> {
            let (tx, rx) = oneshot::channel();
            let registered =
                with_registry(|r| r.register(waiter, &request_id, timeout_ns, Reply::Async(tx)))?;
            if let registry::Registered::Settled(outcome) = registered {
                return Ok(outcome.into());
            }
            if let Some(deadline) = with_registry(|r| r.deadline_of(waiter)) {
                note_deadline(deadline);
            }
            let standby = Standby(waiter);
            let claim = core::pin::pin!(standby.claim());
            let outcome = match future::select(rx, claim).await {
                // A verdict, a cancel by token or a timeout (the registry
                // dropping the sender means cancelled).
                Either::Left((outcome, _)) => outcome,
                Either::Right((owner, rx)) => {
                    // This task runs the timer until its own wait ends;
                    // dropping `owner` then hands the timer over.
                    let timer = core::pin::pin!(run_timer(waiter));
                    match future::select(rx, timer).await {
                        Either::Left((outcome, _)) => {
                            drop(owner);
                            outcome
                        }
                        Either::Right(((), rx)) => {
                            // Not pending any more: hand over, then read
                            // the outcome already sent.
                            drop(owner);
                            rx.await
                        }
                    }
                }
            };
            Ok(outcome.map_or(Outcome::Cancelled, Into::into))
        }

        async fn ingest(mut frames: StreamReader<u8>) -> Result<u64, SinkError> {
            // A stream has its own decoder: its frames never interleave with
            // those fed through `ingest-frames`.
            let mut decoder = FrameDecoder::new();
            let mut totals = IngestTotals::default();
            let mut buf = Vec::with_capacity(READ_CHUNK);
            loop {
                let (status, data) = frames.read(buf).await;
                totals.feed(&mut decoder, &data).map_err(SinkError::from)?;
                // The journal is for a host that replaces failed instances
                // through the batched face; an async stream reports none,
                // so it must not pile up here.
                drop(with_registry(|r| r.take_journal()));
                buf = data;
                buf.clear();
                match status {
                    StreamResult::Complete(_) => {}
                    StreamResult::Dropped | StreamResult::Cancelled => break,
                }
            }
            if with_registry(|r| frames::end_stream(r, &mut decoder)) > 0 {
                return Err(SinkError::MalformedFrame(
                    "stream ended inside a frame".into(),
                ));
            }
            Ok(u64::from(totals.events))
        }
    }
}

export!(Component);
