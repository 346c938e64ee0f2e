//! The pump: feeds an [`EventSource`] into a sink, reconnecting with
//! exponential backoff and jitter, resuming from the sink's resume point
//! (`log_id`, `last_seq`).
//!
//! # Invariants
//!
//! * Every (re)open asks the source for events after the sink's `last_seq`
//!   (the guest's own record of what it applied), so a reconnect neither
//!   loses nor re-applies an event; replays the gateway sends anyway are
//!   dropped by the guest's sequence check (S9).
//! * When a connection ends, the guest's stream decoder is reset, so a frame
//!   cut off by the old connection never corrupts the next one.
//! * A fatal framing error (oversized or corrupt length prefix) ends the
//!   connection; the pump reopens from `last_seq`.
//! * Backoff resets once a connection delivers data.
//! * While it runs, a source with a [`VerdictLookup`](super::VerdictLookup)
//!   looks up every new pending wait of the sink (`lookups.rs`).

use super::lookups::{self, LookupCounters};
use super::{EventSource, OpenRequest, SourceError};
use crate::{ApprovalSink, SinkError};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

impl ApprovalSink {
    /// Feeds `source` into this sink on the current tokio runtime, with the
    /// default reconnect policy, until the returned [`Pump`] is dropped.
    pub fn pump(&self, source: impl EventSource) -> Pump {
        self.pump_with(source, PumpConfig::default())
    }

    /// Like [`pump`](Self::pump), with a reconnect policy.
    pub fn pump_with(&self, source: impl EventSource, config: PumpConfig) -> Pump {
        start(self.clone(), source, config)
    }
}

/// Reconnect policy of a pump. Out-of-range values are clamped, with a
/// logged warning, when the pump starts (S19): no value makes it panic.
#[derive(Debug, Clone, Copy)]
pub struct PumpConfig {
    /// First delay before reconnecting. Default 100 ms; clamped to
    /// 1 ms ..= [`MAX_BACKOFF`].
    pub initial_backoff: Duration,
    /// Longest delay between attempts. Default 5 s; clamped to
    /// `initial_backoff` ..= [`MAX_BACKOFF`].
    pub max_backoff: Duration,
    /// Random spread of each delay, as a fraction (0.2 = ±20%). Default 0.2;
    /// clamped to 0.0 ..= 1.0, and NaN means the default.
    pub jitter: f64,
    /// How long a connection may take to open, and how long a silent
    /// connection may go unanswered (HTTP/2 keepalive pings) before the
    /// source gives it up and the pump reconnects: a half-open gateway is
    /// detected within one and a half times this. Default 30 s; clamped to
    /// 100 ms ..= [`MAX_BACKOFF`].
    pub idle_timeout: Duration,
}

/// The longest delay between reconnect attempts a pump accepts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The shortest delay between reconnect attempts a pump accepts.
pub const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// The shortest idle timeout a pump accepts.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(100);

impl PumpConfig {
    /// This policy with every value in range; warns about each it changed.
    fn clamped(self) -> PumpConfig {
        let default = PumpConfig::default();
        let initial = self.initial_backoff.clamp(MIN_BACKOFF, MAX_BACKOFF);
        let max = self.max_backoff.clamp(initial, MAX_BACKOFF);
        let jitter = if self.jitter.is_nan() {
            default.jitter
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let clamped = PumpConfig {
            initial_backoff: initial,
            max_backoff: max,
            jitter,
            idle_timeout: self.idle_timeout.clamp(MIN_IDLE_TIMEOUT, MAX_BACKOFF),
        };
        if clamped.initial_backoff != self.initial_backoff
            || clamped.max_backoff != self.max_backoff
            || clamped.idle_timeout != self.idle_timeout
            || clamped.jitter.to_bits() != self.jitter.to_bits()
        {
            tracing::warn!(given = ?self, used = ?clamped, "PumpConfig out of range; clamped");
        }
        clamped
    }
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: 0.2,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A snapshot of a pump's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// A connection is open now.
    pub connected: bool,
    /// Connections opened.
    pub connects: u64,
    /// Failed opens and broken connections.
    pub failures: u64,
    /// Chunks fed to the guest.
    pub chunks: u64,
    /// Bytes fed to the guest.
    pub bytes: u64,
    /// Connections ended by a fatal framing error.
    pub fatal_frames: u64,
    /// Messages the source skipped as over the sink's `max_frame_bytes`
    /// (also in the sink's `Stats::oversized_frames`).
    pub oversized_frames: u64,
    /// The pump has stopped for good (a one-shot source ended).
    pub finished: bool,
    /// Opens the gateway refused: credentials or TLS
    /// ([`SourceError::Refused`]). A CLI gives up on the first; a service
    /// alerts on them.
    pub refused: u64,
    /// Verdict lookups of new waits made (durable waits; NATS sources).
    pub lookups: u64,
    /// Lookups that found a stored verdict and applied it.
    pub lookups_found: u64,
    /// Lookups that failed or timed out (their waits stayed pending), or
    /// whose stored verdict the guest refused.
    pub lookups_failed: u64,
    /// Lookups skipped because too many were queued.
    pub lookups_skipped: u64,
    /// The latest error, if any.
    pub last_error: Option<String>,
}

/// The live counters behind [`PumpStats`].
#[derive(Default)]
struct PumpCounters {
    connected: AtomicBool,
    finished: AtomicBool,
    connects: AtomicU64,
    failures: AtomicU64,
    chunks: AtomicU64,
    bytes: AtomicU64,
    fatal_frames: AtomicU64,
    oversized_frames: AtomicU64,
    refused: AtomicU64,
    lookups: Arc<LookupCounters>,
    last_error: Mutex<Option<String>>,
}

impl PumpCounters {
    fn fail(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// A running pump. Dropping it stops the pump.
pub struct Pump {
    status: Arc<PumpCounters>,
    task: tokio::task::JoinHandle<()>,
}

impl Pump {
    /// Where the pump stands.
    pub fn stats(&self) -> PumpStats {
        let s = &self.status;
        PumpStats {
            connected: s.connected.load(Ordering::Relaxed),
            connects: s.connects.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            chunks: s.chunks.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            fatal_frames: s.fatal_frames.load(Ordering::Relaxed),
            oversized_frames: s.oversized_frames.load(Ordering::Relaxed),
            finished: s.finished.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            lookups: s.lookups.started.load(Ordering::Relaxed),
            lookups_found: s.lookups.found.load(Ordering::Relaxed),
            lookups_failed: s.lookups.failed.load(Ordering::Relaxed),
            lookups_skipped: s.lookups.skipped.load(Ordering::Relaxed),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Waits until a one-shot source is exhausted (never, for gRPC).
    pub async fn finished(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How often a one-shot source's chunk is offered to the guest again after
/// the guest failed on it, before it is dropped (a chunk that traps the
/// guest every time must not stall the stream for good).
pub(crate) const CHUNK_ATTEMPTS: u32 = 3;

/// Starts a pump on the current tokio runtime. A sink has one stream
/// decoder and one resume point, so it takes one pump at a time: a second
/// one finishes at once with an error (`PumpStats::last_error`).
fn start(sink: ApprovalSink, source: impl EventSource, config: PumpConfig) -> Pump {
    let Some(claim) = sink.claim_pump() else {
        let status = Arc::new(PumpCounters::default());
        tracing::error!("this sink already has a pump; refusing a second one");
        status.fail("this sink already has a pump (one stream per sink)".into());
        status.finished.store(true, Ordering::Relaxed);
        return Pump {
            status,
            task: tokio::spawn(async {}),
        };
    };
    let watched = source
        .lookup()
        .map(|lookup| (sink.watch_new_waits(), lookup));
    let lookup_counters = Arc::new(
        watched
            .as_ref()
            .map_or_else(LookupCounters::default, |(waits, _)| {
                LookupCounters::watching(waits)
            }),
    );
    let status = Arc::new(PumpCounters {
        lookups: Arc::clone(&lookup_counters),
        ..PumpCounters::default()
    });
    let counters = Arc::clone(&status);
    let task = tokio::spawn(async move {
        // Released when the task ends or is aborted (the future is dropped).
        let _claim = claim;
        let pump = run(sink.clone(), source, config.clamped(), counters);
        tokio::pin!(pump);
        if let Some((waits, lookup)) = watched {
            // The lookups end with the pump; if their channel ends first
            // (the sink was given another watcher), the pump goes on.
            tokio::select! {
                () = &mut pump => return,
                () = lookups::run(&sink, waits, lookup, lookup_counters) => {}
            }
        }
        pump.await;
    });
    Pump { status, task }
}

async fn run(
    sink: ApprovalSink,
    mut source: impl EventSource,
    config: PumpConfig,
    status: Arc<PumpCounters>,
) {
    let name = source.describe();
    let mut backoff = config.initial_backoff;
    loop {
        let resume = sink.resume_point();
        let request = OpenRequest {
            last_seq: resume.last_seq,
            log_id: resume.log_id,
            max_frame_bytes: sink.max_frame_bytes(),
            idle_timeout: config.idle_timeout,
            verdict_ttl: sink.verdict_ttl(),
        };
        let (last_seq, log_id) = (resume.last_seq, resume.log_id);
        match source.open(request).await {
            Ok(mut chunks) => {
                status.connects.fetch_add(1, Ordering::Relaxed);
                status.connected.store(true, Ordering::Relaxed);
                tracing::info!(source = %name, last_seq, log_id, "event source connected");
                while let Some(chunk) = chunks.next().await {
                    let chunk = match chunk {
                        Ok(chunk) => chunk,
                        Err(e) => {
                            tracing::warn!(source = %name, error = %e, "event source failed");
                            status.fail(e.to_string());
                            break;
                        }
                    };
                    backoff = config.initial_backoff;
                    if chunk.oversized > 0 {
                        status
                            .oversized_frames
                            .fetch_add(chunk.oversized, Ordering::Relaxed);
                        sink.note_oversized(chunk.oversized);
                    }
                    status.chunks.fetch_add(1, Ordering::Relaxed);
                    status
                        .bytes
                        .fetch_add(chunk.frames.len() as u64, Ordering::Relaxed);
                    if !feed(
                        &sink,
                        &chunk.frames,
                        source.reopens(),
                        &config,
                        &status,
                        &name,
                    )
                    .await
                    {
                        break;
                    }
                }
                status.connected.store(false, Ordering::Relaxed);
                sink.end_stream();
            }
            Err(SourceError::Exhausted) => {}
            Err(e) => {
                if matches!(e, SourceError::Refused { .. }) {
                    status.refused.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(source = %name, error = %e, "could not open event source");
                status.fail(e.to_string());
            }
        }
        if !source.reopens() {
            status.finished.store(true, Ordering::Relaxed);
            tracing::info!(source = %name, "event source finished");
            return;
        }
        tokio::time::sleep(jittered(backoff, config.jitter)).await;
        backoff = backoff.saturating_mul(2).min(config.max_backoff);
    }
}

/// Feeds one chunk to the sink; false when the connection must end (lost
/// framing, or a guest failure on a source that can be reopened from the
/// resume point). A source that cannot be reopened keeps its stream: the
/// chunk is offered again (after a reset, or once a quarantine is over) up
/// to [`CHUNK_ATTEMPTS`] times, then dropped with an error.
async fn feed(
    sink: &ApprovalSink,
    frames: &[u8],
    reopens: bool,
    config: &PumpConfig,
    status: &PumpCounters,
    name: &str,
) -> bool {
    for attempt in 1..=CHUNK_ATTEMPTS {
        match sink.ingest_bytes(frames) {
            Ok(report) => {
                let Some(e) = report.fatal else {
                    return true;
                };
                tracing::warn!(source = %name, error = %e, "stream lost framing; reopening");
                status.fatal_frames.fetch_add(1, Ordering::Relaxed);
                status.fail(e.to_string());
                return false;
            }
            Err(e) => {
                status.fail(e.to_string());
                if reopens {
                    tracing::warn!(source = %name, error = %e, "ingest failed; reopening");
                    return false;
                }
                tracing::warn!(source = %name, error = %e, attempt, "ingest failed; offering the chunk again");
                let pause = match e {
                    SinkError::CrashLoop(left) => left,
                    _ => config.initial_backoff,
                };
                tokio::time::sleep(pause).await;
            }
        }
    }
    tracing::error!(source = %name, bytes = frames.len(), "chunk dropped after repeated guest failures");
    true
}

/// `delay` spread by ±`jitter` (in range: see [`PumpConfig::clamped`]), so
/// at most twice `MAX_BACKOFF`: `mul_f64` cannot overflow.
fn jittered(delay: Duration, jitter: f64) -> Duration {
    let spread = jitter * (fastrand::f64() * 2.0 - 1.0);
    delay.mul_f64(1.0 + spread)
}
