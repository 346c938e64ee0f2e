//! Durable waits: while a pump whose source can look verdicts up runs (a
//! NATS source), each new pending wait's id is also looked up in the
//! source's log, so a verdict published before the wait began (say, while
//! this agent host was down) still settles it. Waits registered before the
//! pump started are not looked up: start the pump first (the CLI does);
//! the source's first read still covers the last `verdict_cache_ttl`.
//!
//! # Invariants
//!
//! * At most [`CONCURRENT_LOOKUPS`] lookups run at once and at most
//!   [`QUEUED_LOOKUPS`] wait for a turn; more are skipped and counted. A
//!   skipped lookup loses nothing published from then on: the stream still
//!   delivers it.
//! * A lookup that fails, times out or finds nothing leaves the wait
//!   pending (never an error for the agent); one that finds a verdict feeds
//!   it as an unsequenced frame, through the guest's checks like any other
//!   (signatures, finality), so it never moves the resume point.
//! * A lookup holds only a weak reference to the sink: a dropped sink is
//!   not kept alive by its lookups.

use super::ApprovalSink;
use super::shared::Shared;
use crate::sources::VerdictLookup;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Lookups running at once per sink.
pub const CONCURRENT_LOOKUPS: usize = 64;

/// Lookups waiting for a turn per sink; more are skipped.
pub const QUEUED_LOOKUPS: usize = 100_000;

/// The longest a lookup may take (less when the wait is shorter).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a sink's lookups did (in `PumpStats`).
#[derive(Debug, Default)]
pub(crate) struct LookupCounters {
    pub(crate) started: AtomicU64,
    pub(crate) found: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
}

/// A pump's lookup, installed in its sink while the pump runs.
pub(crate) struct LookupHook {
    lookup: Arc<dyn VerdictLookup>,
    runtime: tokio::runtime::Handle,
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    counters: Arc<LookupCounters>,
}

impl LookupHook {
    /// A hook running lookups on the current tokio runtime.
    pub(crate) fn new(lookup: Arc<dyn VerdictLookup>, counters: Arc<LookupCounters>) -> Self {
        LookupHook {
            lookup,
            runtime: tokio::runtime::Handle::current(),
            permits: Arc::new(Semaphore::new(CONCURRENT_LOOKUPS)),
            queued: AtomicUsize::new(0),
            counters,
        }
    }
}

/// Uninstalls its hook when dropped (the pump ended).
pub(crate) struct Installed(Weak<Shared>);

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.lookup_installed.store(false, Ordering::Release);
            *shared.lookup.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

impl ApprovalSink {
    /// Installs `hook` until the returned guard is dropped.
    pub(crate) fn install_lookup(&self, hook: LookupHook) -> Installed {
        *self
            .shared
            .lookup
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
        self.shared.lookup_installed.store(true, Ordering::Release);
        Installed(Arc::downgrade(&self.shared))
    }
}

/// Starts the lookup of a new pending wait on `request_id`, if a hook is
/// installed.
pub(super) fn start(shared: &Arc<Shared>, request_id: &str, timeout: Duration) {
    if !shared.lookup_installed.load(Ordering::Acquire) {
        return;
    }
    let Some(hook) = shared
        .lookup
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    else {
        return;
    };
    if hook.queued.fetch_add(1, Ordering::AcqRel) >= QUEUED_LOOKUPS {
        hook.queued.fetch_sub(1, Ordering::AcqRel);
        hook.counters.skipped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let sink = Arc::downgrade(shared);
    let id = request_id.to_owned();
    let runtime = hook.runtime.clone();
    runtime.spawn(async move {
        let found = match Arc::clone(&hook.permits).acquire_owned().await {
            Ok(_permit) => {
                hook.counters.started.fetch_add(1, Ordering::Relaxed);
                tokio::time::timeout(timeout.min(LOOKUP_TIMEOUT), hook.lookup.lookup(id.clone()))
                    .await
                    .map_err(|_| "timed out".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Err(_) => Err("closed".to_owned()),
        };
        hook.queued.fetch_sub(1, Ordering::AcqRel);
        let counters = &hook.counters;
        match found {
            Ok(Some(frame)) => {
                let Some(shared) = sink.upgrade() else {
                    return;
                };
                match (ApprovalSink { shared }).push_frame(&frame) {
                    Ok(()) => {
                        counters.found.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(request_id = %id, error = %e, "stored verdict rejected");
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(request_id = %id, error = %e, "verdict lookup failed; the wait stays pending");
            }
        }
    });
}
