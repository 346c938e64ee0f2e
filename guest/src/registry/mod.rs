//! The approval-waiter registry: the pure, clock-generic core of the sink.
//! This file holds the waiters (register, cancel, expire, completions);
//! `verdicts.rs` delivers, remembers, verifies and journals verdicts.
//!
//! This module owns every waiter; it keeps the per-id state (the tickets
//! waiting on each id and the verdict remembered for it) in an [`IdTable`]
//! (with a journal of what it newly remembers, S18), their deadlines in a
//! [`DeadlineQueue`] and the stream's position in a [`SeqWindow`]. It knows nothing of wasm, bindings
//! or protobuf, so it compiles and is tested natively with a manual clock,
//! under any executor.
//!
//! # Invariants
//!
//! * `waiters` maps a caller-chosen ticket to its entry, which holds its
//!   id's [`IdRef`] (the [`IdTable`] entry's hash and stamp). A pending
//!   ticket is in the ticket list of its own id. Removing one waiter leaves
//!   its ticket in the list (lazy deletion, like the deadline queue's): a
//!   ticket counts for an id only while `waiters` has it *on that id*
//!   (equal `IdRef`s: tickets may be reused; a stamp names one live entry,
//!   and no waiter outlives its id's entry), and a list is
//!   compacted once stale tickets outnumber live ones, so k timeouts or
//!   cancels on one id cost O(k), not O(k²).
//! * Every pending waiter has a live entry in `deadlines`; an entry is live
//!   iff `waiters` holds its ticket with that deadline (the one liveness
//!   rule, `Waiters`' [`Pending::is_live`]).
//! * Removal is always by ticket (S6): a timeout or cancel never touches another
//!   waiter on the same id, older or newer.
//! * Batched waiters finish by a [`Completion`] pushed to `outbox`, which the
//!   caller drains with [`Registry::take_done`]; async waiters finish by their
//!   `futures` oneshot. A verdict, a cancel and an expiry reach both kinds.
//! * Every applied verdict, delivered or early, is remembered in the verdict
//!   cache within its capacity and TTL (S4, S15): a registration on a
//!   remembered id settles at once (and does not consume it), a repeat is
//!   harmless, and the opposite verdict is ignored and counted (`conflicts`).
//! * Every request id is checked against S13's limits here, and nowhere
//!   else; what callers reject for other reasons they count themselves
//!   ([`Registry::note_malformed`]).
//! * Nothing here panics on any input: all arithmetic on times saturates, no
//!   indexing, no `unwrap`.

mod verdicts;

use crate::config::Config;
use crate::deadlines::{DeadlineQueue, Pending};
use crate::ids::IdTable;
use crate::stats::Stats;
use crate::trust::{AuthFailure, TrustedKeys};
pub use crate::verdict::{Completion, Registered, Reply};
use crate::verdict::{Outcome, Verdict};
use crate::waiters::{Waiter, Waiters};
use crate::window::SeqWindow;
use alloc::vec::Vec;

/// Where the registry reads the time: monotonic nanoseconds (the host's
/// `clock.now` import in the guest, a manual clock in tests).
pub trait TimeSource {
    /// Monotonic nanoseconds since an origin the host picks.
    fn now_ns(&self) -> u64;
}

/// Typed errors of the registry; no input makes it trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The request id is longer than `max_request_id_bytes` (its length).
    RequestIdTooLong(u32),
    /// The request id is empty.
    RequestIdEmpty,
    /// `max_waiters` are already pending (the limit).
    TooManyWaiters(u32),
    /// This ticket is already pending.
    DuplicateWaiter(u64),
    /// The configuration is not acceptable (why).
    InvalidConfig(&'static str),
    /// The other verdict is already final for this id (S15); ignored.
    ConflictingVerdict,
    /// Trusted keys are configured and the verdict is not signed by one of
    /// them (S17); ignored.
    Unauthenticated(AuthFailure),
}

/// The waiter registry. See the module docs for its invariants.
pub struct Registry<C> {
    clock: C,
    config: Config,
    waiters: Waiters,
    ids: IdTable,
    deadlines: DeadlineQueue,
    outbox: Vec<Completion>,
    /// Verdicts remembered since the last [`Registry::take_journal`] (S18).
    journal: Vec<u8>,
    window: SeqWindow,
    trust: TrustedKeys,
    stats: Stats,
}

impl<C: TimeSource> Registry<C> {
    /// A registry with the default [`Config`].
    pub fn new(clock: C) -> Self {
        let config = Config::default();
        Registry {
            clock,
            config,
            waiters: Waiters::with_capacity(0, config.hash_seed),
            ids: IdTable::new(
                config.verdict_cache_capacity,
                config.verdict_cache_ttl_ns,
                config.hash_seed,
            ),
            deadlines: DeadlineQueue::default(),
            outbox: Vec::new(),
            journal: Vec::new(),
            window: SeqWindow::default(),
            trust: TrustedKeys::default(),
            stats: Stats::default(),
        }
    }

    /// Replaces the configuration. Only allowed while nothing is pending, so
    /// no limit changes under a live waiter. Tables are pre-sized for
    /// `presize` waiters (capped by `max_waiters`): a wasm guest's hash tables
    /// that double in place cannot give the old table back to the host.
    pub fn configure(&mut self, config: Config, presize: usize) -> Result<(), RegistryError> {
        if !self.waiters.is_empty() {
            return Err(RegistryError::InvalidConfig(
                "configure while waiters are pending",
            ));
        }
        if let Some(problem) = config.problem() {
            return Err(RegistryError::InvalidConfig(problem));
        }
        self.config = config;
        let n = presize.min(config.max_waiters as usize);
        // Nothing is pending: a new waiter map with the seed; the id table
        // (which may remember verdicts) rehashed with it.
        self.waiters = Waiters::with_capacity(n, config.hash_seed);
        self.ids.reseed(config.hash_seed, n);
        self.deadlines.reserve(n);
        let now = self.clock.now_ns();
        self.ids.set_bounds(
            config.verdict_cache_capacity,
            config.verdict_cache_ttl_ns,
            now,
        );
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers `waiter` on `id` with a deadline of now + `timeout_ns` (S1,
    /// S11). A cached early verdict settles it at once (S4).
    pub fn register(
        &mut self,
        waiter: u64,
        id: &str,
        timeout_ns: u64,
        reply: Reply,
    ) -> Result<Registered, RegistryError> {
        let now = self.clock.now_ns();
        match self.register_from(waiter, id, now, timeout_ns, reply)? {
            Registered::Pending(deadline) => Ok(Registered::Pending(
                self.next_deadline().unwrap_or(deadline),
            )),
            settled => Ok(settled),
        }
    }

    /// Like [`Registry::register`], for a wait the host asked for at
    /// `start_ns` and queued (SPEC.md §5.5): the deadline is
    /// `start_ns + timeout_ns`, so the time in the queue does not lengthen
    /// it; the verdict memory is read as of now. `Pending` carries this
    /// waiter's own deadline, not the earliest: a batch of registrations
    /// asks for the earliest once, at its end.
    pub fn register_from(
        &mut self,
        waiter: u64,
        id: &str,
        start_ns: u64,
        timeout_ns: u64,
        reply: Reply,
    ) -> Result<Registered, RegistryError> {
        self.check_id(id)?;
        if self.waiters.get(waiter).is_some() {
            return Err(RegistryError::DuplicateWaiter(waiter));
        }
        let now = self.clock.now_ns();
        if let Some(verdict) = self.ids.remembered(id, now) {
            return Ok(self.settle_early(verdict, reply));
        }
        if self.waiters.len() >= self.config.max_waiters as usize {
            return Err(RegistryError::TooManyWaiters(self.config.max_waiters));
        }
        let deadline = start_ns.saturating_add(timeout_ns.min(self.config.max_timeout_ns));
        let id = match self.ids.add_ticket(id, waiter) {
            Ok(id) => id,
            // Not reached after `remembered` above; settled the same way.
            Err(verdict) => return Ok(self.settle_early(verdict, reply)),
        };
        self.waiters.insert(Waiter {
            ticket: waiter,
            id,
            deadline,
            reply,
        });
        self.deadlines.push(deadline, waiter);
        Ok(Registered::Pending(deadline))
    }

    /// Settles a registration on a remembered id at once (S4).
    fn settle_early(&mut self, verdict: Verdict, reply: Reply) -> Registered {
        self.stats.early_hits += 1;
        let outcome = Outcome::Decided(verdict);
        if let Reply::Async(tx) = reply {
            let _ = tx.send(outcome);
        }
        Registered::Settled(outcome)
    }

    /// The deadline of a pending waiter.
    pub fn deadline_of(&self, waiter: u64) -> Option<u64> {
        self.waiters.get(waiter).map(|w| w.deadline)
    }

    /// Removes one waiter by ticket (S6, S7); false if it was not pending.
    pub fn cancel(&mut self, waiter: u64) -> bool {
        let Some(entry) = self.remove(waiter) else {
            return false;
        };
        self.stats.cancelled += 1;
        self.retire_deadlines(1);
        // A batched waiter's caller asked for this and needs no report; an
        // async waiter's task is told through its oneshot.
        if let Reply::Async(tx) = entry.reply {
            let _ = tx.send(Outcome::Cancelled);
        }
        true
    }

    /// Times out every waiter whose deadline is `<= clock.now()` (S3, S11).
    /// Returns how many timed out.
    pub fn expire(&mut self) -> u32 {
        let now = self.clock.now_ns();
        let mut expired = 0u32;
        loop {
            let waiters = &self.waiters;
            let Some(ticket) = self.deadlines.pop_due(now, |t, d| waiters.is_live(t, d)) else {
                break;
            };
            if let Some(entry) = self.remove(ticket) {
                expired = expired.saturating_add(1);
                self.finish(ticket, entry.reply, Outcome::TimedOut);
            }
        }
        self.stats.timed_out += u64::from(expired);
        self.ids.evict(now);
        expired
    }

    /// The earliest deadline of a pending waiter, if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        let waiters = &self.waiters;
        self.deadlines.next(|t, d| waiters.is_live(t, d))
    }

    /// Reports `outcome` for a batched `waiter` that never became pending
    /// (a queued registration settled at once), with the other completions.
    pub fn push_done(&mut self, waiter: u64, outcome: Outcome) {
        self.outbox.push(Completion { waiter, outcome });
    }

    /// Drains the completions of batched waiters finished since the last call.
    pub fn take_done(&mut self) -> Vec<Completion> {
        core::mem::take(&mut self.outbox)
    }

    /// The stream's sequence window (S9, S16).
    pub fn window(&mut self) -> &mut SeqWindow {
        &mut self.window
    }

    /// Counts one malformed event or frame (S8).
    pub fn note_malformed(&mut self) {
        self.stats.malformed += 1;
    }

    /// Counts one policy invalidation forwarded to the host (S10).
    pub fn note_invalidation(&mut self) {
        self.stats.invalidations += 1;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Stats {
            waiters: count(self.waiters.len()),
            ids: count(self.ids.waiting_ids()),
            cached_verdicts: count(self.ids.remembered_len()),
            evictions: self.ids.evictions(),
            last_seq: self.window.last_seq,
            log_id: self.window.log_id,
            duplicates: self.window.duplicates,
            log_changes: self.window.log_changes,
            ..self.stats
        }
    }

    /// Checks a request id against S13's limits.
    fn check_id(&self, id: &str) -> Result<(), RegistryError> {
        if id.is_empty() {
            return Err(RegistryError::RequestIdEmpty);
        }
        if id.len() > self.config.max_request_id_bytes as usize {
            return Err(RegistryError::RequestIdTooLong(
                u32::try_from(id.len()).unwrap_or(u32::MAX),
            ));
        }
        Ok(())
    }

    /// `n` waiters finished before their deadline: the queue drops its
    /// stale entries when they outnumber the pending waiters.
    fn retire_deadlines(&mut self, n: usize) {
        self.deadlines.retire(n, &self.waiters);
    }

    /// Takes `waiter` out of the waiter map and its id's list; its deadline
    /// entry becomes stale.
    fn remove(&mut self, waiter: u64) -> Option<Waiter> {
        let entry = self.waiters.remove(waiter)?;
        let waiters = &self.waiters;
        self.ids.remove_ticket(entry.id, |t| {
            waiters.get(t).is_some_and(|w| w.id == entry.id)
        });
        Some(entry)
    }

    fn finish(&mut self, waiter: u64, reply: Reply, outcome: Outcome) {
        match reply {
            Reply::Batched => self.outbox.push(Completion { waiter, outcome }),
            // A dropped receiver means the async task is gone; nothing to tell.
            Reply::Async(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}
