//! [`VerdictCache`]: the verdict memory. Every applied verdict, delivered
//! or early, is remembered, bounded by capacity and TTL (S4, S15): a later
//! wait on the id settles at once with it, a repeat is harmless, and the
//! opposite verdict is a conflict. Finality holds for as long as a verdict is
//! remembered.
//!
//! # Invariants
//!
//! * `map` holds at most `capacity` verdicts; `order` lists insertions
//!   oldest first as `(id, generation, stored_at)`. An `order` entry is stale
//!   once its id was taken or overwritten (the map's generation for the id
//!   no longer matches); stale entries are skipped, and pruned when they
//!   outnumber live ones, so `order` stays O(capacity).
//! * Eviction is oldest first: by TTL (a scan of `order`'s front that stops
//!   at the first young entry, with no map lookup unless something expired),
//!   then by capacity. Every verdict dropped unused is counted.
//! * A verdict older than the TTL is never handed out, even if no eviction
//!   pass has dropped it yet.

use crate::config::{SeededState, seeded};
use crate::verdict::{Decider, Verdict};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use hashbrown::HashMap;
use hashbrown::hash_map::{Entry, EntryRef};

/// What [`VerdictCache::remember`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// The id had no remembered verdict: this one is now remembered (unless
    /// the capacity is 0) and must be applied.
    New,
    /// The same verdict is remembered already: nothing to do.
    Repeat,
    /// The other verdict is remembered: this one must be ignored (S15).
    Conflict,
}

struct Cached {
    verdict: Verdict,
    /// Who decided, when the event said so (boxed: most verdicts name
    /// nobody, and the memory holds up to its capacity of them).
    decider: Option<Box<Decider>>,
    stored_at: u64,
    /// Insertion number, so a stale `order` entry of an overwritten id is
    /// skipped.
    generation: u64,
}

/// A FIFO memory of applied verdicts, bounded by capacity and TTL.
pub struct VerdictCache {
    map: HashMap<Rc<str>, Cached, SeededState>,
    order: VecDeque<(Rc<str>, u64, u64)>,
    generation: u64,
    capacity: usize,
    ttl_ns: u64,
    evictions: u64,
}

impl VerdictCache {
    /// An empty cache with these bounds (capacity 0 disables it), hashing
    /// with `hash_seed` (S20).
    pub fn new(capacity: u32, ttl_ns: u64, hash_seed: u64) -> Self {
        VerdictCache {
            map: HashMap::with_hasher(seeded(hash_seed)),
            order: VecDeque::new(),
            generation: 0,
            capacity: capacity as usize,
            ttl_ns,
            evictions: 0,
        }
    }

    /// Rehashes what is remembered with a new seed (S20).
    pub fn reseed(&mut self, hash_seed: u64) {
        let mut map = HashMap::with_capacity_and_hasher(self.map.len(), seeded(hash_seed));
        map.extend(self.map.drain());
        self.map = map;
    }

    /// Changes the bounds, evicting at once what no longer fits at `now`.
    pub fn set_bounds(&mut self, capacity: u32, ttl_ns: u64, now: u64) {
        self.capacity = capacity as usize;
        self.ttl_ns = ttl_ns;
        self.evict(now);
    }

    /// Remembers `verdict` (decided by `decider`) for `id` at `now` unless a
    /// verdict is remembered for it already (S15: the first verdict wins),
    /// with one hash lookup.
    pub fn remember(
        &mut self,
        id: &str,
        verdict: Verdict,
        decider: Option<Decider>,
        now: u64,
    ) -> Remembered {
        if self.capacity == 0 {
            return Remembered::New;
        }
        // Whatever is past its TTL goes first, so an entry found below is
        // still remembered.
        self.evict(now);
        let generation = self.generation + 1;
        let key = match self.map.entry_ref(id) {
            EntryRef::Occupied(entry) if entry.get().verdict == verdict => {
                return Remembered::Repeat;
            }
            EntryRef::Occupied(_) => return Remembered::Conflict,
            EntryRef::Vacant(entry) => {
                let key: Rc<str> = Rc::from(id);
                let cached = Cached {
                    verdict,
                    decider: decider.map(Box::new),
                    stored_at: now,
                    generation,
                };
                entry.insert_entry_with_key(Rc::clone(&key), cached);
                key
            }
        };
        self.generation = generation;
        self.order.push_back((key, generation, now));
        self.enforce_capacity();
        // Keep the queue bounded should stale entries ever build up.
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, g, _)| map.get(k).is_some_and(|c| c.generation == *g));
        }
        Remembered::New
    }

    /// The verdict remembered for `id`, if it is still within the TTL (one
    /// found past it is dropped now and counted as evicted).
    pub fn get(&mut self, id: &str, now: u64) -> Option<Verdict> {
        let entry = self.map.get(id)?;
        if now.saturating_sub(entry.stored_at) <= self.ttl_ns {
            return Some(entry.verdict);
        }
        // Its `order` entry goes stale (the generation no longer matches).
        self.map.remove(id);
        self.evictions += 1;
        None
    }

    /// [`VerdictCache::get`], with who decided when the event said so (a
    /// cold path: it hashes the id twice).
    pub fn lookup(&mut self, id: &str, now: u64) -> Option<(Verdict, Option<&Decider>)> {
        let verdict = self.get(id, now)?;
        Some((verdict, self.map.get(id).and_then(|e| e.decider.as_deref())))
    }

    /// Drops verdicts older than the TTL at `now`, then enforces the
    /// capacity (oldest first).
    pub fn evict(&mut self, now: u64) {
        // The queue is in insertion order, so the first entry young enough
        // ends the scan; this costs no map lookup unless something expired
        // (it runs on every cached verdict).
        while let Some((_, _, stored_at)) = self.order.front() {
            if now.saturating_sub(*stored_at) <= self.ttl_ns {
                break;
            }
            let Some((key, generation, _)) = self.order.pop_front() else {
                break;
            };
            self.evict_queued(key, generation);
        }
        self.enforce_capacity();
    }

    /// Remembers a verdict carried over from a failed instance (S18) with
    /// its original time, unless the id has one already or it is past the
    /// TTL at `now`. Entries must come oldest first.
    pub fn restore(&mut self, id: &str, verdict: Verdict, stored_at: u64, now: u64) -> bool {
        if self.capacity == 0
            || now.saturating_sub(stored_at) > self.ttl_ns
            || self.map.contains_key(id)
        {
            return false;
        }
        self.generation += 1;
        let key: Rc<str> = Rc::from(id);
        let cached = Cached {
            verdict,
            decider: None,
            stored_at,
            generation: self.generation,
        };
        self.map.insert(Rc::clone(&key), cached);
        self.order.push_back((key, self.generation, stored_at));
        self.enforce_capacity();
        true
    }

    /// Verdicts cached now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Verdicts dropped unused so far (capacity or TTL).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Drops the oldest live verdicts until the capacity holds.
    fn enforce_capacity(&mut self) {
        while self.map.len() > self.capacity {
            let Some((key, generation, _)) = self.order.pop_front() else {
                break;
            };
            self.evict_queued(key, generation);
        }
    }

    /// Evicts `key`'s verdict if it is still the one queued with
    /// `generation` (not taken or overwritten since), hashing the id once.
    fn evict_queued(&mut self, key: Rc<str>, generation: u64) {
        if let Entry::Occupied(entry) = self.map.entry(key)
            && entry.get().generation == generation
        {
            entry.remove();
            self.evictions += 1;
        }
    }
}
