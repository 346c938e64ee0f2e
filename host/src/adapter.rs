//! The adapter owns the wasmtime `Store` of one sink and nothing else: it
//! turns each registry export into a plain synchronous call, and every WIT
//! type into a host type. This is the only file that converts WIT types.
//!
//! Every method returns `Err(SinkError::GuestFault)` when the guest trapped
//! or broke a store limit; the store is then poisoned and the caller must
//! replace the adapter (see the sink's recovery, S12). The guest itself
//! never returns that variant, so it is unambiguous.

use crate::bindings::{
    self, ApprovalRegistry, WitApplied, WitAuthFailure, WitDecision, WitOutcome, WitSinkError,
    WitTrustedKey,
};
use crate::clock::duration_ns;
use crate::component::Loaded;
use crate::config::SinkConfig;
use crate::error::{HostError, SinkError, cause};
use crate::imports::StoreState;
use crate::outcome::Outcome;
use crate::report::{IngestReport, ResumePoint};
use crate::trust::{AuthFailure, DecidedBy, TrustedKey};
use approval_guest::stats::Stats as GuestStats;
use approval_guest::verdict::Verdict;
use std::sync::Arc;
use wasmtime::Store;

/// Waiters finished by one call, and the earliest deadline still pending.
#[derive(Debug, Default)]
pub struct Batch {
    /// `(ticket, outcome)` of each finished waiter.
    pub done: Vec<(u64, Outcome)>,
    /// The guest's earliest pending deadline, for the timer.
    pub next_deadline: Option<u64>,
    /// The guest's journal of verdicts remembered by this call (S18).
    pub journal: Vec<u8>,
}

/// What one `apply` of queued operations did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Waiters the operations finished.
    pub batch: Batch,
    /// `(index, error)` of each operation that failed, in order.
    pub errors: Vec<(u32, SinkError)>,
    /// Waiters the verdicts woke.
    pub woken: u32,
}

/// One live instance of the `approval-registry` component.
pub struct Adapter {
    store: Store<StoreState>,
    api: ApprovalRegistry,
    /// Epoch ticks each call may run (S13's per-call budget).
    budget_ticks: u64,
    /// Make the next call trap (fault injection for tests).
    trap_next: bool,
}

fn fault(e: wasmtime::Error) -> SinkError {
    SinkError::GuestFault(format!("{e:#}"))
}

impl Adapter {
    /// Instantiates from the pre-linked component and applies `config`.
    /// Trusts `keys` (S17) when there are any.
    pub fn new(
        loaded: &Loaded,
        state: StoreState,
        config: &SinkConfig,
        keys: &[TrustedKey],
    ) -> Result<Self, HostError> {
        let mut store = Store::new(&loaded.engine, state);
        store.limiter(|s| &mut s.limits);
        // One tick may pass right after arming, so a budget of n ticks is
        // between n-1 and n tick lengths; round up and add one.
        let tick = crate::component::EPOCH_TICK.as_nanos().max(1);
        let budget_ticks = u64::try_from(config.call_budget.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        store.set_epoch_deadline(budget_ticks);
        let api = loaded
            .pre
            .instantiate(&mut store)
            .map_err(|e| HostError::Instantiate(cause(e)))?;
        let mut adapter = Adapter {
            store,
            api,
            budget_ticks,
            trap_next: false,
        };
        let trusted = if keys.is_empty() {
            Ok(())
        } else {
            adapter.set_trusted_keys(keys)
        };
        adapter
            .configure(config)
            .and(trusted)
            .map_err(|e| match e {
                fault @ SinkError::GuestFault(_) => HostError::Instantiate(Arc::new(fault)),
                refused => HostError::Config(refused),
            })?;
        Ok(adapter)
    }

    /// Refills the epoch budget before a guest call.
    fn refill_budget(&mut self) {
        let ticks = if std::mem::take(&mut self.trap_next) {
            0
        } else {
            self.budget_ticks
        };
        self.store.set_epoch_deadline(ticks);
    }

    /// Makes the next guest call trap, as a guest bug would (tests of S12).
    #[cfg(feature = "fault-injection")]
    pub fn inject_trap(&mut self) {
        self.trap_next = true;
    }

    fn configure(&mut self, c: &SinkConfig) -> Result<(), SinkError> {
        self.refill_budget();
        let cfg = bindings::WitConfig {
            max_waiters: c.max_waiters,
            max_request_id_bytes: c.max_request_id_bytes,
            max_frame_bytes: c.max_frame_bytes,
            verdict_cache_capacity: c.verdict_cache_capacity,
            verdict_cache_ttl_ns: duration_ns(c.verdict_cache_ttl),
            max_timeout_ns: duration_ns(c.max_timeout),
            // S20: a fresh random seed per instance (also after a reset).
            hash_seed: fastrand::u64(..),
        };
        self.api
            .assembly_approval_registry()
            .call_configure(&mut self.store, cfg)
            .map_err(fault)?
            .map_err(Into::into)
    }

    /// `registry.set-trusted-keys`.
    fn set_trusted_keys(&mut self, keys: &[TrustedKey]) -> Result<(), SinkError> {
        self.refill_budget();
        let keys: Vec<WitTrustedKey> = keys
            .iter()
            .map(|k| WitTrustedKey {
                id: k.id.clone(),
                public_key: k.public_key.to_vec(),
            })
            .collect();
        self.api
            .assembly_approval_registry()
            .call_set_trusted_keys(&mut self.store, &keys)
            .map_err(fault)?
            .map_err(Into::into)
    }

    /// `registry.decided-by`.
    pub fn decided_by(&mut self, id: &str) -> Result<Option<DecidedBy>, SinkError> {
        self.refill_budget();
        let found = self
            .api
            .assembly_approval_registry()
            .call_decided_by(&mut self.store, id)
            .map_err(fault)?;
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        Ok(found.map(|d| DecidedBy {
            decision: verdict_of(d.decision),
            reviewer: nonempty(d.reviewer),
            key_id: nonempty(d.key_id),
            resolved_at_unix_ms: (d.resolved_at_unix_ms != 0).then_some(d.resolved_at_unix_ms),
        }))
    }

    /// `registry.apply`: a buffer of queued operations (the guest's `ops`
    /// format), at `now` on the sink's clock.
    pub fn apply(&mut self, now: u64, ops: &[u8]) -> Result<Applied, SinkError> {
        self.refill_budget();
        let a: WitApplied = self
            .api
            .assembly_approval_registry()
            .call_apply(&mut self.store, now, ops)
            .map_err(fault)?;
        Ok(Applied {
            batch: a.batch.into(),
            errors: a
                .errors
                .into_iter()
                .map(|e| (e.op, e.error.into()))
                .collect(),
            woken: a.woken,
        })
    }

    /// `registry.expire`.
    pub fn expire(&mut self) -> Result<Batch, SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_expire(&mut self.store)
            .map(Into::into)
            .map_err(fault)
    }

    /// `registry.ingest-frames`.
    pub fn ingest(&mut self, bytes: &[u8]) -> Result<(IngestReport, Batch), SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_ingest_frames(&mut self.store, bytes)
            .map(split_report)
            .map_err(fault)
    }

    /// `registry.apply-frame`.
    pub fn apply_frame(&mut self, frame: &[u8]) -> Result<(IngestReport, Batch), SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_apply_frame(&mut self.store, frame)
            .map(split_report)
            .map_err(fault)
    }

    /// `registry.reset-stream`.
    pub fn reset_stream(&mut self) -> Result<u32, SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_reset_stream(&mut self.store)
            .map_err(fault)
    }

    /// `registry.resume-from`.
    pub fn resume_from(&mut self, at: ResumePoint) -> Result<(), SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_resume_from(&mut self.store, at.log_id, at.last_seq)
            .map_err(fault)
    }

    /// `registry.restore-verdicts`.
    pub fn restore_verdicts(&mut self, journal: &[u8]) -> Result<u32, SinkError> {
        self.refill_budget();
        self.api
            .assembly_approval_registry()
            .call_restore_verdicts(&mut self.store, journal)
            .map_err(fault)
    }

    /// `registry.stats`.
    pub fn stats(&mut self) -> Result<GuestStats, SinkError> {
        self.refill_budget();
        let s = self
            .api
            .assembly_approval_registry()
            .call_stats(&mut self.store)
            .map_err(fault)?;
        macro_rules! from_wit {
            ([$s:ident] $($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
                GuestStats { $($name: $s.$name,)* }
            };
        }
        Ok(approval_guest::for_each_stat!(from_wit, s))
    }
}

/// The host's report of an ingest, and the batch its events finished.
fn split_report(r: bindings::IngestReport) -> (IngestReport, Batch) {
    let batch = Batch::from(r.batch);
    let report = IngestReport {
        completed: u32::try_from(batch.done.len()).unwrap_or(u32::MAX),
        events: r.events,
        duplicates: r.duplicates,
        rejected: r.rejected,
        errors: r.errors.into_iter().map(Into::into).collect(),
        fatal: r.fatal.map(Into::into),
        last_seq: r.last_seq,
        log_id: r.log_id,
    };
    (report, batch)
}

impl From<bindings::Batch> for Batch {
    fn from(b: bindings::Batch) -> Self {
        Batch {
            done: b
                .done
                .into_iter()
                .map(|c| (c.waiter, c.outcome.into()))
                .collect(),
            next_deadline: b.next_deadline,
            journal: b.journal,
        }
    }
}

impl From<WitSinkError> for SinkError {
    fn from(e: WitSinkError) -> Self {
        match e {
            WitSinkError::RequestIdTooLong(n) => SinkError::RequestIdTooLong(n),
            WitSinkError::RequestIdEmpty => SinkError::RequestIdEmpty,
            WitSinkError::TooManyWaiters(n) => SinkError::TooManyWaiters(n),
            WitSinkError::FrameTooLarge(n) => SinkError::FrameTooLarge(n),
            WitSinkError::MalformedFrame(m) => SinkError::MalformedFrame(m),
            WitSinkError::UnknownDecision(d) => SinkError::UnknownDecision(d),
            WitSinkError::DuplicateWaiter(w) => SinkError::DuplicateWaiter(w),
            WitSinkError::InvalidConfig(m) => SinkError::InvalidConfig(m),
            WitSinkError::ConflictingVerdict => SinkError::ConflictingVerdict,
            WitSinkError::Unauthenticated(why) => SinkError::Unauthenticated(match why {
                WitAuthFailure::Unsigned => AuthFailure::Unsigned,
                WitAuthFailure::UntrustedKey => AuthFailure::UntrustedKey,
                WitAuthFailure::BadSignature => AuthFailure::BadSignature,
            }),
        }
    }
}

/// The verdict a WIT decision names.
fn verdict_of(d: WitDecision) -> Verdict {
    match d {
        WitDecision::Approved => Verdict::Approved,
        WitDecision::Denied => Verdict::Denied,
    }
}

impl From<WitOutcome> for Outcome {
    fn from(o: WitOutcome) -> Self {
        match o {
            WitOutcome::Decided(d) => Outcome::Decided(verdict_of(d)),
            WitOutcome::TimedOut => Outcome::TimedOut,
            WitOutcome::Cancelled => Outcome::Cancelled,
            WitOutcome::Reset => Outcome::Reset,
        }
    }
}
