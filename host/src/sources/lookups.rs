//! Durable waits: while a pump whose source can look verdicts up runs (a
//! NATS or gRPC source), each new pending wait of its sink is also looked up in
//! the source's log, so a verdict published before the wait began (say,
//! while this agent host was down) still settles it. The sink offers its
//! new waits through a channel (`sink/new_waits.rs`) after each flush, so
//! waits stay batched. Waits registered before the pump started are not
//! looked up: start the pump first (the CLI does); the source's first read
//! still covers the last `verdict_cache_ttl`.
//!
//! # Invariants
//!
//! * At most [`CONCURRENT_LOOKUPS`] lookups run at once; the sink's channel
//!   bounds those waiting for a turn (more are skipped and counted). A
//!   skipped lookup loses nothing published from then on: the stream still
//!   delivers it.
//! * A lookup that fails, times out or finds nothing leaves the wait
//!   pending (never an error for the agent); one that finds a verdict feeds
//!   it as an unsequenced frame, through the guest's checks like any other
//!   (signatures, finality), so it never moves the resume point.
//! * Lookups hold only a weak reference to the sink, and end with the pump.

use super::VerdictLookup;
use crate::ApprovalSink;
use crate::sink::{NewWait, NewWaits};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// An encoded `InvalidationEvent` (no length prefix) as an unsequenced
/// frame body: `seq = 0` appended (of a repeated scalar field the last
/// value wins), so whatever seq the stored bytes say, applying it never
/// moves a sink's resume point. What every [`VerdictLookup`] returns.
pub fn unsequenced_frame(event: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(event.len() + 2);
    frame.extend_from_slice(event);
    // Field 1 (`seq`), wire type 0 (varint), value 0.
    frame.extend_from_slice(&[0x08, 0x00]);
    frame
}

/// Lookups running at once per pump.
pub const CONCURRENT_LOOKUPS: usize = 64;

/// The longest a lookup may take (less when the wait is shorter).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a pump's lookups did (in `PumpStats`).
#[derive(Debug, Default)]
pub(super) struct LookupCounters {
    pub(super) started: AtomicU64,
    pub(super) found: AtomicU64,
    pub(super) failed: AtomicU64,
    /// Shared with the sink's channel, which counts what it skipped.
    pub(super) skipped: Arc<AtomicU64>,
}

impl LookupCounters {
    /// Counters for lookups of `waits`.
    pub(super) fn watching(waits: &NewWaits) -> Self {
        LookupCounters {
            skipped: waits.skipped(),
            ..LookupCounters::default()
        }
    }
}

/// Looks up each wait `waits` yields with `lookup` until the channel ends
/// or the future is dropped (the pump ended), which also ends the lookups
/// under way.
pub(super) async fn run(
    sink: &ApprovalSink,
    mut waits: NewWaits,
    lookup: Arc<dyn VerdictLookup>,
    counters: Arc<LookupCounters>,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_LOOKUPS));
    let mut running = JoinSet::new();
    while let Some(wait) = waits.recv().await {
        while running.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        counters.started.fetch_add(1, Ordering::Relaxed);
        let sink = sink.downgrade();
        let lookup = Arc::clone(&lookup);
        let counters = Arc::clone(&counters);
        running.spawn(async move {
            let _permit = permit;
            look_up(sink, wait, &*lookup, &counters).await;
        });
    }
}

/// One lookup: applies what it finds, counts what fails.
async fn look_up(
    sink: crate::sink::WeakSink,
    wait: NewWait,
    lookup: &dyn VerdictLookup,
    counters: &LookupCounters,
) {
    let NewWait {
        request_id,
        timeout,
    } = wait;
    let found = tokio::time::timeout(
        timeout.min(LOOKUP_TIMEOUT),
        lookup.lookup(request_id.clone()),
    )
    .await;
    match found {
        Ok(Ok(Some(frame))) => {
            let Some(sink) = sink.upgrade() else {
                return;
            };
            match sink.push_frame(&frame) {
                Ok(()) => {
                    counters.found.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%request_id, error = %e, "stored verdict rejected");
                }
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%request_id, error = %e, "verdict lookup failed; the wait stays pending");
        }
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%request_id, "verdict lookup timed out; the wait stays pending");
        }
    }
}
