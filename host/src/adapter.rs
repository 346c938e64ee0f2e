//! The adapter owns the wasmtime `Store` of one sink and nothing else: it
//! turns each registry export into a plain synchronous call and its WIT
//! types into host types.
//!
//! Every method returns `Err(Fault)` when the guest trapped or broke a store
//! limit; the store is then poisoned and the caller must replace the adapter
//! (see `ApprovalSink`'s reset, S12).

use crate::bindings::{
    self, ApprovalRegistry, IngestReport, Registered, WitDecision, WitSinkError,
};
use crate::clock::duration_ns;
use crate::component::Loaded;
use crate::config::SinkConfig;
use crate::error::SinkError;
use crate::imports::StoreState;
use crate::outcome::{Decision, Outcome};
use wasmtime::Store;

/// The guest trapped or exceeded a limit; the message says how.
#[derive(Debug, Clone)]
pub struct Fault(pub String);

impl From<wasmtime::Error> for Fault {
    fn from(e: wasmtime::Error) -> Self {
        Fault(format!("{e:#}"))
    }
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

impl Adapter {
    /// Instantiates from the pre-linked component and applies `config`.
    pub fn new(
        loaded: &Loaded,
        state: StoreState,
        config: &SinkConfig,
    ) -> Result<Self, crate::HostError> {
        let mut store = Store::new(&loaded.engine, state);
        store.limiter(|s| &mut s.limits);
        // One tick may pass right after arming, so a budget of n ticks is
        // between n-1 and n tick lengths; round up and add one.
        let tick = crate::component::EPOCH_TICK.as_nanos().max(1);
        let budget_ticks =
            u64::try_from(config.call_budget.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX);
        store.set_epoch_deadline(budget_ticks.saturating_add(1));
        let api = loaded
            .pre
            .instantiate(&mut store)
            .map_err(|e| crate::HostError::Instantiate(format!("{e:#}")))?;
        let mut adapter = Adapter {
            store,
            api,
            budget_ticks: budget_ticks.saturating_add(1),
            trap_next: false,
        };
        adapter
            .configure(config)
            .map_err(|f| crate::HostError::Instantiate(f.0))?
            .map_err(crate::HostError::Config)?;
        Ok(adapter)
    }

    /// Refills the time budget before a guest call.
    fn arm(&mut self) {
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

    fn configure(&mut self, c: &SinkConfig) -> Result<Result<(), SinkError>, Fault> {
        self.arm();
        let cfg = bindings::WitConfig {
            max_waiters: c.max_waiters,
            max_request_id_bytes: c.max_request_id_bytes,
            max_frame_bytes: c.max_frame_bytes,
            verdict_cache_capacity: c.verdict_cache_capacity,
            verdict_cache_ttl_ns: duration_ns(c.verdict_cache_ttl),
            max_timeout_ns: duration_ns(c.max_timeout),
        };
        let r = self
            .api
            .assembly_approval_registry()
            .call_configure(&mut self.store, cfg)?;
        Ok(r.map_err(Into::into))
    }

    /// `registry.register`.
    pub fn register(
        &mut self,
        waiter: u64,
        id: &str,
        timeout_ns: u64,
    ) -> Result<Result<Registered, SinkError>, Fault> {
        self.arm();
        let r = self.api.assembly_approval_registry().call_register(
            &mut self.store,
            waiter,
            id,
            timeout_ns,
        )?;
        Ok(r.map_err(Into::into))
    }

    /// `registry.cancel`.
    pub fn cancel(&mut self, waiter: u64) -> Result<bool, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_cancel(&mut self.store, waiter)?)
    }

    /// `registry.resolve`.
    pub fn resolve(
        &mut self,
        id: &str,
        verdict: WitDecision,
    ) -> Result<Result<bindings::Batch, SinkError>, Fault> {
        self.arm();
        let r = self
            .api
            .assembly_approval_registry()
            .call_resolve(&mut self.store, id, verdict)?;
        Ok(r.map_err(Into::into))
    }

    /// `registry.expire`.
    pub fn expire(&mut self) -> Result<bindings::Batch, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_expire(&mut self.store)?)
    }

    /// `registry.ingest-frames`.
    pub fn ingest(&mut self, bytes: &[u8]) -> Result<IngestReport, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_ingest_frames(&mut self.store, bytes)?)
    }

    /// `registry.apply-frame`.
    pub fn apply_frame(&mut self, frame: &[u8]) -> Result<IngestReport, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_apply_frame(&mut self.store, frame)?)
    }

    /// `registry.reset-stream`.
    pub fn reset_stream(&mut self) -> Result<u32, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_reset_stream(&mut self.store)?)
    }

    /// `registry.resume-from`.
    pub fn resume_from(&mut self, seq: u64) -> Result<(), Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_resume_from(&mut self.store, seq)?)
    }

    /// `registry.stats`.
    pub fn stats(&mut self) -> Result<bindings::SinkStats, Fault> {
        self.arm();
        Ok(self
            .api
            .assembly_approval_registry()
            .call_stats(&mut self.store)?)
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
        }
    }
}

impl From<bindings::WitOutcome> for Outcome {
    fn from(o: bindings::WitOutcome) -> Self {
        match o {
            bindings::WitOutcome::Decided(WitDecision::Approved) => {
                Outcome::Decided(Decision::Approved)
            }
            bindings::WitOutcome::Decided(WitDecision::Denied) => {
                Outcome::Decided(Decision::Denied)
            }
            bindings::WitOutcome::TimedOut => Outcome::TimedOut,
            bindings::WitOutcome::Cancelled => Outcome::Cancelled,
            bindings::WitOutcome::Reset => Outcome::Reset,
        }
    }
}
