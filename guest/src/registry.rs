//! The approval-waiter registry: the pure, clock-generic core of the sink.
//!
//! This module owns every waiter, the deadline heap and the early-verdict
//! cache. It knows nothing of wasm, bindings or protobuf, so it compiles and is
//! tested natively with a manual clock, under any executor.
//!
//! # Invariants
//!
//! * `waiters` maps a caller-chosen token to its entry; `by_id` maps a request
//!   id to the tokens waiting on it and how many of them are live. A pending
//!   token is in the list of its own id, and an id is in `by_id` iff a waiter
//!   on it is pending. Removing one waiter leaves its token in the list
//!   (lazy deletion, like the heap's): a token counts for an id only while
//!   `waiters` has it *with that id* (tokens may be reused), and a list is
//!   compacted once stale tokens outnumber live ones, so k timeouts or
//!   cancels on one id cost O(k), not O(k²).
//! * Every pending waiter has an entry `(deadline, token)` in `deadlines`.
//!   Entries of waiters that finished early stay behind (lazy deletion) and are
//!   counted in `stale`; the heap is rebuilt when stale entries outnumber live
//!   ones, so cancelled waiters never accumulate.
//! * Removal is always by token (S6): a timeout or cancel never touches another
//!   waiter on the same id, older or newer.
//! * Batched waiters finish by a [`Completion`] pushed to `outbox`, which the
//!   caller drains with [`Registry::take_done`]; async waiters finish by their
//!   `futures` oneshot. A verdict, a cancel and an expiry reach both kinds.
//! * A verdict for an id nobody waits on goes into a FIFO cache bounded by
//!   capacity and TTL (S4); a registration consumes it.
//! * Nothing here panics on any input: all arithmetic on times saturates, no
//!   indexing, no `unwrap`.

use alloc::collections::{BinaryHeap, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use futures::channel::oneshot;
use hashbrown::HashMap;

/// A source of monotonic time in nanoseconds (the host's `clock.now`).
pub trait Clock {
    /// Monotonic nanoseconds since an origin the host picks.
    fn now(&self) -> u64;
}

/// A reviewer's verdict. Anything else on the wire is rejected (S8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The action may go ahead.
    Approved,
    /// The action must not go ahead.
    Denied,
}

/// How one wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reviewer decided.
    Decided(Verdict),
    /// The deadline passed first; never a denial (S3).
    TimedOut,
    /// The waiter was cancelled by its token (S7).
    Cancelled,
}

/// One finished batched waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The caller's token.
    pub waiter: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// What [`Registry::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Settled at once (an early verdict was cached); nothing is pending.
    Settled(Outcome),
    /// Pending; the value is the earliest deadline now pending, for the timer.
    Pending(u64),
}

/// How a waiter reports its outcome.
#[derive(Debug)]
pub enum Notify {
    /// Reported through [`Registry::take_done`] (the batched face).
    Batched,
    /// Reported through a oneshot (the async face).
    Async(oneshot::Sender<Outcome>),
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
    /// This token is already pending.
    DuplicateWaiter(u64),
    /// The configuration is not acceptable (why).
    InvalidConfig(&'static str),
}

/// Limits and cache settings (S4, S11, S13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most waiters pending at once.
    pub max_waiters: u32,
    /// Longest request id, in bytes.
    pub max_request_id_bytes: u32,
    /// Largest protobuf frame, in bytes (used by the frame decoder).
    pub max_frame_bytes: u32,
    /// Most early verdicts cached; 0 disables the cache.
    pub verdict_cache_capacity: u32,
    /// How long an early verdict stays usable, in nanoseconds.
    pub verdict_cache_ttl_ns: u64,
    /// Longest timeout honoured; longer ones are capped to it.
    pub max_timeout_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_waiters: 1_000_000,
            max_request_id_bytes: 256,
            max_frame_bytes: 64 * 1024,
            verdict_cache_capacity: 10_000,
            verdict_cache_ttl_ns: 60 * 1_000_000_000,
            max_timeout_ns: 24 * 3600 * 1_000_000_000,
        }
    }
}

/// Counters of one registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Waiters pending now.
    pub waiters: u32,
    /// Distinct request ids with at least one waiter.
    pub ids: u32,
    /// Early verdicts cached now.
    pub cached_verdicts: u32,
    /// Waiters resolved by a verdict.
    pub delivered: u64,
    /// Waiters that timed out.
    pub timed_out: u64,
    /// Waiters cancelled by token.
    pub cancelled: u64,
    /// Registrations settled from the early-verdict cache.
    pub early_hits: u64,
    /// Cached verdicts dropped unused (capacity or TTL).
    pub evictions: u64,
    /// Events or frames rejected as malformed.
    pub malformed: u64,
    /// Sequenced events ignored as duplicates.
    pub duplicates: u64,
    /// Highest sequence number applied.
    pub last_seq: u64,
    /// Policy invalidations forwarded to the host.
    pub invalidations: u64,
}

/// The tokens registered on one request id (see the module invariants).
#[derive(Default)]
struct IdWaiters {
    tokens: Vec<u64>,
    live: usize,
}

struct Waiter {
    id: Rc<str>,
    deadline: u64,
    notify: Notify,
}

struct CachedVerdict {
    verdict: Verdict,
    stored_at: u64,
    /// Insertion number, so a stale queue entry of an overwritten id is skipped.
    generation: u64,
}

/// The waiter registry. See the module docs for its invariants.
pub struct Registry<C> {
    clock: C,
    config: Config,
    waiters: HashMap<u64, Waiter>,
    by_id: HashMap<Rc<str>, IdWaiters>,
    deadlines: BinaryHeap<Reverse<(u64, u64)>>,
    stale: usize,
    cache: HashMap<Rc<str>, CachedVerdict>,
    /// Insertion order of cached verdicts: (id, generation, stored-at). An
    /// entry is stale once its id was taken or overwritten (the generation no
    /// longer matches); stale entries are skipped, and pruned when they
    /// outnumber live ones.
    cache_order: VecDeque<(Rc<str>, u64, u64)>,
    cache_generation: u64,
    outbox: Vec<Completion>,
    stats: Stats,
}

impl<C: Clock> Registry<C> {
    /// A registry with the default [`Config`].
    pub fn new(clock: C) -> Self {
        Registry {
            clock,
            config: Config::default(),
            waiters: HashMap::new(),
            by_id: HashMap::new(),
            deadlines: BinaryHeap::new(),
            stale: 0,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_generation: 0,
            outbox: Vec::new(),
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
        if config.max_waiters == 0 {
            return Err(RegistryError::InvalidConfig(
                "max-waiters must be at least 1",
            ));
        }
        if config.max_request_id_bytes == 0 {
            return Err(RegistryError::InvalidConfig(
                "max-request-id-bytes must be at least 1",
            ));
        }
        if config.max_frame_bytes == 0 {
            return Err(RegistryError::InvalidConfig(
                "max-frame-bytes must be at least 1",
            ));
        }
        self.config = config;
        let n = presize.min(config.max_waiters as usize);
        self.waiters.reserve(n);
        self.by_id.reserve(n);
        self.deadlines.reserve(n);
        self.evict_cache(0);
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
        notify: Notify,
    ) -> Result<Registered, RegistryError> {
        self.check_id(id)?;
        if self.waiters.contains_key(&waiter) {
            return Err(RegistryError::DuplicateWaiter(waiter));
        }
        let now = self.clock.now();
        if let Some(verdict) = self.take_cached(id, now) {
            self.stats.early_hits += 1;
            let outcome = Outcome::Decided(verdict);
            if let Notify::Async(tx) = notify {
                let _ = tx.send(outcome);
            }
            return Ok(Registered::Settled(outcome));
        }
        if self.waiters.len() >= self.config.max_waiters as usize {
            return Err(RegistryError::TooManyWaiters(self.config.max_waiters));
        }
        let deadline = now.saturating_add(timeout_ns.min(self.config.max_timeout_ns));
        let id: Rc<str> = match self.by_id.get_key_value(id) {
            Some((key, _)) => Rc::clone(key),
            None => Rc::from(id),
        };
        let on_id = self.by_id.entry(Rc::clone(&id)).or_default();
        on_id.tokens.push(waiter);
        on_id.live += 1;
        self.waiters.insert(
            waiter,
            Waiter {
                id,
                deadline,
                notify,
            },
        );
        self.deadlines.push(Reverse((deadline, waiter)));
        let next = self.next_deadline().unwrap_or(deadline);
        Ok(Registered::Pending(next))
    }

    /// The deadline of a pending waiter.
    pub fn deadline_of(&self, waiter: u64) -> Option<u64> {
        self.waiters.get(&waiter).map(|w| w.deadline)
    }

    /// Removes one waiter by token (S6, S7); false if it was not pending.
    pub fn cancel(&mut self, waiter: u64) -> bool {
        match self.remove(waiter) {
            Some(entry) => {
                self.stats.cancelled += 1;
                self.stale += 1;
                // A batched waiter's caller asked for this and needs no report;
                // an async waiter's task is told through its oneshot.
                if let Notify::Async(tx) = entry.notify {
                    let _ = tx.send(Outcome::Cancelled);
                }
                self.compact_deadlines();
                true
            }
            None => false,
        }
    }

    /// Delivers a verdict to every waiter on `id` (S2, S5), or caches it when
    /// nobody waits (S4). Returns how many waiters it resolved.
    pub fn resolve(&mut self, id: &str, verdict: Verdict) -> u32 {
        let Some(on_id) = self.by_id.remove(id) else {
            self.cache_verdict(id, verdict);
            return 0;
        };
        let mut woken = 0u32;
        for token in on_id.tokens {
            // A stale token may since have been reused on another id: one
            // lookup both checks the id and takes the waiter.
            let entry = match self.waiters.entry(token) {
                hashbrown::hash_map::Entry::Occupied(e) if *e.get().id == *id => e.remove(),
                _ => continue,
            };
            woken = woken.saturating_add(1);
            self.stale += 1;
            self.finish(token, entry.notify, Outcome::Decided(verdict));
        }
        self.stats.delivered += u64::from(woken);
        self.compact_deadlines();
        woken
    }

    /// Times out every waiter whose deadline is `<= clock.now()` (S3, S11).
    /// Returns how many timed out.
    pub fn expire(&mut self) -> u32 {
        let now = self.clock.now();
        let mut expired = 0u32;
        while let Some(&Reverse((deadline, token))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let live = self
                .waiters
                .get(&token)
                .is_some_and(|w| w.deadline == deadline);
            if !live {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            if let Some(entry) = self.remove(token) {
                expired = expired.saturating_add(1);
                self.finish(token, entry.notify, Outcome::TimedOut);
            }
        }
        self.stats.timed_out += u64::from(expired);
        self.evict_cache(now);
        expired
    }

    /// Times out one waiter if its deadline is `<= clock.now()` (S3), leaving
    /// every other waiter alone: an async wait whose own timer fired ends
    /// itself instead of waking every other due task (which made a storm of
    /// n async timeouts cost O(n²) in wakeups). Returns whether it timed out.
    pub fn expire_waiter(&mut self, waiter: u64) -> bool {
        let now = self.clock.now();
        if self.waiters.get(&waiter).is_none_or(|w| w.deadline > now) {
            return false;
        }
        let Some(entry) = self.remove(waiter) else {
            return false;
        };
        self.stats.timed_out += 1;
        self.stale += 1;
        self.finish(waiter, entry.notify, Outcome::TimedOut);
        self.compact_deadlines();
        self.evict_cache(now);
        true
    }

    /// The earliest deadline of a pending waiter, if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(&Reverse((deadline, token))) = self.deadlines.peek() {
            if self
                .waiters
                .get(&token)
                .is_some_and(|w| w.deadline == deadline)
            {
                return Some(deadline);
            }
            self.deadlines.pop();
            self.stale = self.stale.saturating_sub(1);
        }
        None
    }

    /// Drains the completions of batched waiters finished since the last call.
    pub fn take_done(&mut self) -> Vec<Completion> {
        core::mem::take(&mut self.outbox)
    }

    /// Records a sequence number (S9): false if `seq` is a duplicate. Zero is
    /// "unsequenced" and always accepted.
    pub fn accept_seq(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        if seq <= self.stats.last_seq {
            self.stats.duplicates += 1;
            return false;
        }
        self.stats.last_seq = seq;
        true
    }

    /// Raises the resume point to `seq` (never lowers it).
    pub fn resume_from(&mut self, seq: u64) {
        self.stats.last_seq = self.stats.last_seq.max(seq);
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
        let mut stats = self.stats;
        stats.waiters = u32::try_from(self.waiters.len()).unwrap_or(u32::MAX);
        stats.ids = u32::try_from(self.by_id.len()).unwrap_or(u32::MAX);
        stats.cached_verdicts = u32::try_from(self.cache.len()).unwrap_or(u32::MAX);
        stats
    }

    /// Checks a request id against S13's limits.
    pub fn check_id(&self, id: &str) -> Result<(), RegistryError> {
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

    /// Takes `waiter` out of both maps; its heap entry becomes stale.
    fn remove(&mut self, waiter: u64) -> Option<Waiter> {
        let entry = self.waiters.remove(&waiter)?;
        if let Some(on_id) = self.by_id.get_mut(&*entry.id) {
            on_id.live = on_id.live.saturating_sub(1);
            if on_id.live == 0 {
                self.by_id.remove(&*entry.id);
            } else if on_id.tokens.len() > 2 * on_id.live + 8 {
                // Keep each live token of this id once (a token reused on
                // the same id may be listed twice).
                let waiters = &self.waiters;
                on_id.tokens.sort_unstable();
                on_id.tokens.dedup();
                on_id
                    .tokens
                    .retain(|t| waiters.get(t).is_some_and(|w| w.id == entry.id));
            }
        }
        Some(entry)
    }

    fn finish(&mut self, waiter: u64, notify: Notify, outcome: Outcome) {
        match notify {
            Notify::Batched => self.outbox.push(Completion { waiter, outcome }),
            // A dropped receiver means the async task is gone; nothing to tell.
            Notify::Async(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }

    /// Rebuilds the heap once stale entries outnumber live ones, so memory
    /// stays proportional to pending waiters however many are cancelled.
    fn compact_deadlines(&mut self) {
        if self.stale > 64 && self.stale > self.waiters.len() {
            let waiters = &self.waiters;
            self.deadlines
                .retain(|Reverse((d, t))| waiters.get(t).is_some_and(|w| w.deadline == *d));
            self.stale = 0;
        }
    }

    fn cache_verdict(&mut self, id: &str, verdict: Verdict) {
        if self.config.verdict_cache_capacity == 0 || self.check_id(id).is_err() {
            return;
        }
        let now = self.clock.now();
        self.evict_cache(now);
        self.cache_generation += 1;
        let generation = self.cache_generation;
        let key: Rc<str> = match self.cache.get_key_value(id) {
            Some((key, _)) => Rc::clone(key),
            None => Rc::from(id),
        };
        // A later verdict for the same id replaces the earlier one (the
        // reviewer changed their mind before anyone waited).
        self.cache.insert(
            Rc::clone(&key),
            CachedVerdict {
                verdict,
                stored_at: now,
                generation,
            },
        );
        self.cache_order.push_back((key, generation, now));
        while self.cache.len() > self.config.verdict_cache_capacity as usize {
            if !self.pop_oldest_cached() {
                break;
            }
        }
        // Overwrites leave stale queue entries; keep the queue bounded.
        if self.cache_order.len() > 2 * self.cache.len() + 64 {
            let cache = &self.cache;
            self.cache_order
                .retain(|(k, g, _)| cache.get(k).is_some_and(|c| c.generation == *g));
        }
    }

    /// Drops the oldest live cached verdict; false if the cache is empty.
    fn pop_oldest_cached(&mut self) -> bool {
        while let Some((key, generation, _)) = self.cache_order.pop_front() {
            if self.evict_queued(key, generation) {
                return true;
            }
        }
        false
    }

    /// Evicts `key`'s cached verdict if it is still the one queued with
    /// `generation` (not taken or overwritten since), hashing the id once.
    fn evict_queued(&mut self, key: Rc<str>, generation: u64) -> bool {
        match self.cache.entry(key) {
            hashbrown::hash_map::Entry::Occupied(entry) if entry.get().generation == generation => {
                entry.remove();
                self.stats.evictions += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops cached verdicts older than the TTL at `now`, then enforces the
    /// capacity (oldest first).
    fn evict_cache(&mut self, now: u64) {
        let ttl = self.config.verdict_cache_ttl_ns;
        // The queue is in insertion order, so the first entry young enough
        // ends the scan; this costs no map lookup unless something expired
        // (it runs on every cached verdict).
        while let Some((_, _, stored_at)) = self.cache_order.front() {
            if now.saturating_sub(*stored_at) <= ttl {
                break;
            }
            let Some((key, generation, _)) = self.cache_order.pop_front() else {
                break;
            };
            self.evict_queued(key, generation);
        }
        while self.cache.len() > self.config.verdict_cache_capacity as usize {
            if !self.pop_oldest_cached() {
                break;
            }
        }
    }

    fn take_cached(&mut self, id: &str, now: u64) -> Option<Verdict> {
        let entry = self.cache.remove(id)?;
        if now.saturating_sub(entry.stored_at) > self.config.verdict_cache_ttl_ns {
            self.stats.evictions += 1;
            return None;
        }
        Some(entry.verdict)
    }
}
