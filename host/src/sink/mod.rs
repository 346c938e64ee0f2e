//! [`ApprovalSink`]: the host API over one guest instance.
//!
//! # How a wait works
//!
//! All handles of a sink share one guest instance (the adapter's wasmtime
//! `Store`) behind a lock. [`ApprovalSink::wait`] takes a host slot and
//! queues the guest's registration on the caller's thread, then returns a
//! [`Wait`] future: the waiter exists before the future is first polled
//! (S1), because the queue reaches the guest before any other guest call,
//! and [`ApprovalSink::waiter_count`] is exact at once.
//! [`ApprovalSink::deliver`] sends the queue and its verdict as one call,
//! so a round trip costs one guest call. Completions reported by the guest
//! fill slots and wake their futures once the lock is released.
//!
//! Files, one job each (a public handle over a private core whose state is
//! a set of owners, tokio `sync` style):
//!
//! * `mod.rs`: the public API, [`ApprovalSink`];
//! * `builder.rs`: [`ApprovalSinkBuilder`];
//! * `core/`: the lock, the one way to call the guest, and the rules that
//!   tie the owners below together (`waits.rs`: queueing, delivering and
//!   the flush; `stream.rs`: feeding frames, the resume point, counters);
//! * `queue.rs`: the queue of waits and cancels, flushed as one call;
//! * `timer.rs`: the timer's state and the task that expires due waiters;
//! * `recovery.rs`: the crash-loop guard of trap recovery (S12);
//! * `journal.rs`: the host's copy of the guest's verdict journal (S18);
//! * `new_waits.rs`: new pending waits offered to a pump's lookups;
//! * `wait.rs`: the [`Wait`] future and cancel-on-drop (S7);
//! * `events.rs`: [`InvalidationSink`], the original's event interface.

mod builder;
mod core;
mod events;
mod journal;
mod new_waits;
mod queue;
mod recovery;
mod timer;
mod wait;

pub use builder::ApprovalSinkBuilder;
pub use events::InvalidationSink;
pub use wait::{Wait, WaitForApproval};

pub(crate) use self::core::PumpClaim;
pub(crate) use new_waits::{NewWait, NewWaits};
#[cfg(test)]
pub(crate) use {
    builder::INVALIDATION_BUFFER, journal::TAIL_ENTRIES, new_waits::QUEUED_LOOKUPS,
    queue::FLUSH_BYTES, recovery::LONGEST_QUARANTINE,
};

use self::core::Core;
use crate::adapter::{Adapter, Batch};
use crate::error::{SinkError, WaitError};
use crate::outcome::Decision;
use crate::outcome::Outcome;
use crate::report::{IngestReport, ResumePoint};
use crate::stats::Stats;
use crate::trust::{DecidedBy, Resolution, signed_chunk_bytes};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The approval-waiter registry, running in a sandboxed component.
///
/// Cheap to clone (clones share one instance); `Send + Sync`; usable from any
/// thread and any tokio runtime flavour.
///
/// # Examples
///
/// An agent waits; a reviewer's verdict arrives on another task:
///
/// ```
/// use approval_host::{ApprovalSink, Decision};
/// use std::time::Duration;
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() {
///     let sink = ApprovalSink::new();
///     // Registered here, before the first poll: a verdict that arrives
///     // right away is not missed.
///     let wait = sink.wait_for_approval("req-1", Duration::from_secs(30));
///     let reviewer = sink.clone();
///     tokio::spawn(async move { reviewer.deliver("req-1", Decision::Approved) });
///     assert_eq!(wait.await, Decision::Approved);
///
///     // Nobody answers: `Pending`, never `Denied`.
///     let silent = sink.wait_for_approval("req-2", Duration::from_millis(10));
///     assert_eq!(silent.await, Decision::Pending);
/// }
/// ```
#[derive(Clone)]
pub struct ApprovalSink {
    core: Arc<Core>,
}

impl Default for ApprovalSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ApprovalSink {
    /// A sink on the embedded component with [`SystemClock`](crate::SystemClock)
    /// and default limits, like the original's `new()`.
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
    ///
    /// # Examples
    ///
    /// A sink on a manual clock, as tests use it:
    ///
    /// ```
    /// use approval_host::{ApprovalSink, ManualClock, SinkConfig};
    ///
    /// let clock = ManualClock::new();
    /// let config = SinkConfig { max_waiters: 1_000, ..SinkConfig::default() };
    /// let sink = ApprovalSink::builder().clock(clock.clone()).config(config).build()?;
    /// assert_eq!(sink.waiter_count(), 0);
    /// # Ok::<(), approval_host::HostError>(())
    /// ```
    pub fn builder() -> ApprovalSinkBuilder {
        ApprovalSinkBuilder::default()
    }

    /// Waits for a verdict on `request_id`, returning `Decision::Pending`
    /// when `timeout` passes, the wait fails, or the guest is reset: never
    /// `Denied` without a reviewer. The waiter is registered before this
    /// returns (S1); dropping the future cancels it (S7). Takes the id as
    /// `&str` or `String`, like the original's `impl Into<String>`.
    pub fn wait_for_approval(
        &self,
        request_id: impl AsRef<str>,
        timeout: Duration,
    ) -> WaitForApproval {
        WaitForApproval::new(self.wait(request_id, timeout))
    }

    /// Like [`wait_for_approval`](Self::wait_for_approval), but says how the
    /// wait ended and reports bad requests as typed errors.
    ///
    /// The registration is queued and reaches the guest before any other
    /// guest call (S1); an id over `max_request_id_bytes` is refused here,
    /// before it is copied anywhere. Other refusals the guest makes (an
    /// empty id, `max_waiters`) arrive as the `Wait`'s `Err`, as does a
    /// verdict remembered for the id (as its outcome).
    ///
    /// # Examples
    ///
    /// ```
    /// use approval_host::{ApprovalSink, Outcome, Verdict, WaitError};
    /// use std::time::Duration;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() {
    ///     let sink = ApprovalSink::new();
    ///     sink.deliver("req-1", Verdict::Denied.decision()).unwrap();
    ///     // A verdict that came first is kept for the wait that follows (S4).
    ///     let outcome = sink.wait("req-1", Duration::from_secs(5)).await;
    ///     assert_eq!(outcome, Ok(Outcome::Decided(Verdict::Denied)));
    ///
    ///     let huge = "x".repeat(100_000);
    ///     let refused = sink.wait(&huge, Duration::from_secs(5)).await;
    ///     assert!(matches!(refused, Err(WaitError::RequestIdTooLong(_))));
    /// }
    /// ```
    pub fn wait(&self, request_id: impl AsRef<str>, timeout: Duration) -> Wait {
        let request_id = request_id.as_ref();
        let core = Arc::clone(&self.core);
        if let Err(e) = core.check_id_length(request_id) {
            return Wait::settled(core, Err(e.into()));
        }
        let ticket = core.queue_wait(request_id, timeout);
        Wait::registered(core, ticket)
    }

    /// Like [`wait`](Self::wait), and says who decided (S17): the reviewer,
    /// the key id when the verdict was signed, and when it was decided.
    /// Registers before it returns (S1), like `wait`.
    pub fn wait_detailed(
        &self,
        request_id: impl AsRef<str>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Resolution, WaitError>> + Send + 'static {
        let request_id = request_id.as_ref().to_owned();
        let wait = self.wait(&request_id, timeout);
        let sink = self.clone();
        async move {
            let outcome = wait.await?;
            let decided_by = match outcome {
                Outcome::Decided(_) => sink.decided_by(&request_id),
                _ => None,
            };
            Ok(Resolution {
                outcome,
                decided_by,
            })
        }
    }

    /// Who decided `request_id`, while the sink remembers its verdict (S15's
    /// bound); `None` if it has none, or the guest call failed.
    pub fn decided_by(&self, request_id: &str) -> Option<DecidedBy> {
        self.core.guest(|a| a.decided_by(request_id)).ok().flatten()
    }

    /// Delivers a verdict: every waiter on `request_id` gets it, or it is
    /// cached for a wait that comes later (S4). Returns how many waiters it
    /// woke. `Pending`/`Unspecified` are not verdicts: refused with
    /// `UnknownDecision` and counted as malformed (S8). With trusted keys
    /// configured it is refused with `Unauthenticated(Unsigned)` (S17): a
    /// direct call carries no signature; push the signed frame instead.
    pub fn deliver(&self, request_id: &str, decision: Decision) -> Result<u32, SinkError> {
        self.core.deliver(request_id, decision)
    }

    /// Feeds one encoded `InvalidationEvent` (no length prefix). Its verdict
    /// or invalidation takes effect before this returns. Independent of any
    /// stream a source is feeding (a partial frame there is left alone).
    pub fn push_frame(&self, frame: &[u8]) -> Result<(), SinkError> {
        let report = self.ingest_with(|a| a.apply_frame(frame))?;
        match report.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Feeds the next chunk of a length-delimited frame stream; frames may
    /// straddle chunks. Completions take effect before this returns. One
    /// stream at a time per sink: a pump owns it while it runs.
    ///
    /// With trusted keys configured, the bytes go to the guest in chunks
    /// small enough that verifying them stays well under the call budget
    /// (S17), and the reports of the chunks are added up.
    pub fn ingest_bytes(&self, bytes: &[u8]) -> Result<IngestReport, SinkError> {
        if !self.core.requires_signatures() {
            return self.ingest_with(|a| a.ingest(bytes));
        }
        let mut chunks = bytes.chunks(signed_chunk_bytes(self.core.config().call_budget));
        let first = chunks.next().unwrap_or_default();
        let mut report = self.ingest_with(|a| a.ingest(first))?;
        for chunk in chunks {
            if report.fatal.is_some() {
                // Framing is lost; the rest of these bytes cannot be read.
                break;
            }
            report.absorb(self.ingest_with(|a| a.ingest(chunk))?);
        }
        Ok(report)
    }

    /// Runs an ingest export and applies the completions it reports.
    fn ingest_with(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<(IngestReport, Batch), SinkError>,
    ) -> Result<IngestReport, SinkError> {
        self.core.ingest(f)
    }

    /// Ends the byte stream fed through [`ingest_bytes`](Self::ingest_bytes)
    /// (its source closed): a partial frame left behind is dropped and
    /// counted as malformed, so the next stream starts clean. Returns the
    /// bytes dropped.
    pub fn end_stream(&self) -> u32 {
        self.core.guest(|a| a.reset_stream()).unwrap_or(0)
    }

    /// The largest frame this sink accepts: what its sources must pass on.
    pub(crate) fn max_frame_bytes(&self) -> u32 {
        self.core.config().max_frame_bytes
    }

    /// How long this sink remembers a verdict: how far back a source with
    /// no resume point reads.
    pub(crate) fn verdict_ttl(&self) -> Duration {
        self.core.config().verdict_cache_ttl
    }

    /// Claims this sink's stream for a pump; `None` if a pump holds it.
    pub(crate) fn claim_pump(&self) -> Option<PumpClaim> {
        self.core.claim_pump()
    }

    /// Counts messages a source skipped as over `max_frame_bytes`.
    pub(crate) fn note_oversized(&self, skipped: u64) {
        self.core.note_oversized(skipped);
    }

    /// Offers every wait that is still pending once its registration
    /// reached the guest, from now on, to the returned watcher (one at a
    /// time: a pump's lookups). Waits stay batched: they are offered after
    /// each flush, not flushed one by one.
    pub(crate) fn watch_new_waits(&self) -> NewWaits {
        self.core.watch_new_waits()
    }

    /// Where this sink's stream stands (S9, S16): what a source resumes
    /// from. Kept by the host, so it survives a reset and reads true while
    /// the guest is quarantined.
    pub fn resume_point(&self) -> ResumePoint {
        self.core.resume_point()
    }

    /// Sets where this sink's stream resumes (S9, S16): a new sink that
    /// takes over from one that stopped (say, after a process restart that
    /// kept the old sink's [`resume_point`](Self::resume_point)) neither
    /// misses nor re-applies an event. Within the same log the point never
    /// moves back. Call it before starting a pump.
    pub fn resume_from(&self, at: ResumePoint) -> Result<(), SinkError> {
        self.core.resume_from(at)
    }

    /// A receiver of policy invalidations (S10): the agent id, empty for all.
    pub fn subscribe_invalidations(&self) -> broadcast::Receiver<String> {
        self.core.subscribe_invalidations()
    }

    /// Waits pending now. Exact as soon as `wait` returns or an outcome is
    /// delivered; equal to `stats().await.waiters` whenever the sink is idle.
    pub fn waiter_count(&self) -> usize {
        self.core.waiter_count()
    }

    /// The guest's counters plus the host's (resets, skipped frames, guest
    /// calls).
    /// If the guest call faults or is refused, the guest's counters read as
    /// zero (after the reset it caused), but for the resume point.
    pub async fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Makes the next guest call trap, as a guest bug would: for tests of
    /// trap recovery (S12). Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn inject_trap(&self) {
        self.core.inject_trap();
    }

    /// Size in bytes of the component this sink runs.
    pub fn component_size(&self) -> usize {
        self.core.component_size()
    }
}

/// A handle of a sink that does not keep it alive (a lookup under way must
/// not outlive the pump's sink).
pub(crate) struct WeakSink(std::sync::Weak<Core>);

impl WeakSink {
    /// The sink, if it is still alive.
    pub(crate) fn upgrade(&self) -> Option<ApprovalSink> {
        self.0.upgrade().map(|core| ApprovalSink { core })
    }
}

impl ApprovalSink {
    /// A handle that does not keep this sink alive.
    pub(crate) fn downgrade(&self) -> WeakSink {
        WeakSink(Arc::downgrade(&self.core))
    }
}
