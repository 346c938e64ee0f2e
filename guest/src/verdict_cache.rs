//! [`VerdictCache`]: the verdict memory. Every applied verdict, delivered
//! or early, is remembered, bounded by capacity and TTL (S4, S15): a later
//! wait on the id settles at once with it, a repeat is harmless, and the
//! opposite verdict is a conflict. Finality holds for as long as a verdict is
//! remembered.
//!
//! # Invariants
//!
//! * `table` holds at most `capacity` verdicts, each with its id's hash
//!   (hashbrown's `HashTable`, so the id is hashed once per operation and
//!   never again to evict it). `order` lists insertions oldest first as
//!   `(hash, generation, stored_at)`: the generation is unique per
//!   insertion, so an entry is found again by hash and generation alone,
//!   with no string compare. An `order` entry is stale once its verdict was
//!   dropped (no entry in `table` has that generation); stale entries are
//!   skipped, and pruned when they outnumber live ones, so `order` stays
//!   O(capacity).
//! * Eviction is oldest first: by TTL (a scan of `order`'s front that stops
//!   at the first young entry, with no table lookup unless something
//!   expired), then by capacity. Every verdict dropped unused is counted.
//! * The key of a new entry comes from the caller ([`VerdictCache::remember`]
//!   takes a maker), so the registry hands over the `Rc<str>` its waiter
//!   index already holds instead of allocating the id again.
//! * A verdict older than the TTL is never handed out, even if no eviction
//!   pass has dropped it yet.

use crate::config::{SeededState, seeded};
use crate::verdict::{Decider, Verdict};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

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
    id: Rc<str>,
    /// The id's hash with the current seed.
    hash: u64,
    verdict: Verdict,
    /// Who decided, when the event said so (boxed: most verdicts name
    /// nobody, and the memory holds up to its capacity of them).
    decider: Option<Box<Decider>>,
    stored_at: u64,
    /// Insertion number: unique, so an `order` entry finds exactly its own
    /// insertion (and a stale one finds nothing).
    generation: u64,
}

/// A FIFO memory of applied verdicts, bounded by capacity and TTL.
pub struct VerdictCache {
    table: HashTable<Cached>,
    hasher: SeededState,
    /// `(hash, generation, stored_at)`, oldest first.
    order: VecDeque<(u64, u64, u64)>,
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
            table: HashTable::new(),
            hasher: seeded(hash_seed),
            order: VecDeque::new(),
            generation: 0,
            capacity: capacity as usize,
            ttl_ns,
            evictions: 0,
        }
    }

    /// Rehashes what is remembered with a new seed (S20).
    pub fn reseed(&mut self, hash_seed: u64) {
        self.hasher = seeded(hash_seed);
        let mut entries: alloc::vec::Vec<Cached> = self.table.drain().collect();
        entries.sort_unstable_by_key(|c| c.generation);
        self.order.clear();
        for mut cached in entries {
            cached.hash = self.hasher.hash_one(&*cached.id);
            self.order
                .push_back((cached.hash, cached.generation, cached.stored_at));
            let hash = cached.hash;
            self.table.insert_unique(hash, cached, |c| c.hash);
        }
    }

    /// Changes the bounds, evicting at once what no longer fits at `now`.
    pub fn set_bounds(&mut self, capacity: u32, ttl_ns: u64, now: u64) {
        self.capacity = capacity as usize;
        self.ttl_ns = ttl_ns;
        self.evict(now);
    }

    /// Remembers `verdict` (decided by `decider`) for `id` at `now` unless a
    /// verdict is remembered for it already (S15: the first verdict wins),
    /// hashing the id once. `key` makes the stored copy of `id` (called only
    /// for a new entry): the registry passes the one its waiter index holds.
    pub fn remember(
        &mut self,
        id: &str,
        verdict: Verdict,
        decider: Option<Decider>,
        now: u64,
        key: impl FnOnce() -> Rc<str>,
    ) -> Remembered {
        if self.capacity == 0 {
            return Remembered::New;
        }
        // Whatever is past its TTL goes first, so an entry found below is
        // still remembered.
        self.evict(now);
        let hash = self.hasher.hash_one(id);
        let generation = self.generation + 1;
        match self.table.entry(hash, |c| *c.id == *id, |c| c.hash) {
            Entry::Occupied(entry) if entry.get().verdict == verdict => {
                return Remembered::Repeat;
            }
            Entry::Occupied(_) => return Remembered::Conflict,
            Entry::Vacant(entry) => {
                entry.insert(Cached {
                    id: key(),
                    hash,
                    verdict,
                    decider: decider.map(Box::new),
                    stored_at: now,
                    generation,
                });
            }
        }
        self.generation = generation;
        self.order.push_back((hash, generation, now));
        self.enforce_capacity();
        // Keep the queue bounded should stale entries ever build up.
        if self.order.len() > 2 * self.table.len() + 64 {
            let table = &self.table;
            self.order
                .retain(|&(h, g, _)| table.find(h, |c| c.generation == g).is_some());
        }
        Remembered::New
    }

    /// The verdict remembered for `id`, if it is still within the TTL (one
    /// found past it is dropped now and counted as evicted).
    pub fn get(&mut self, id: &str, now: u64) -> Option<Verdict> {
        self.lookup(id, now).map(|(verdict, _)| verdict)
    }

    /// [`VerdictCache::get`], with who decided when the event said so.
    pub fn lookup(&mut self, id: &str, now: u64) -> Option<(Verdict, Option<&Decider>)> {
        if self.table.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(id);
        let Ok(entry) = self.table.find_entry(hash, |c| *c.id == *id) else {
            return None;
        };
        if now.saturating_sub(entry.get().stored_at) > self.ttl_ns {
            // Its `order` entry goes stale (no generation matches).
            entry.remove();
            self.evictions += 1;
            return None;
        }
        let cached = entry.into_mut();
        Some((cached.verdict, cached.decider.as_deref()))
    }

    /// Drops verdicts older than the TTL at `now`, then enforces the
    /// capacity (oldest first).
    pub fn evict(&mut self, now: u64) {
        // The queue is in insertion order, so the first entry young enough
        // ends the scan; this costs no lookup unless something expired (it
        // runs on every cached verdict).
        while let Some(&(hash, generation, stored_at)) = self.order.front() {
            if now.saturating_sub(stored_at) <= self.ttl_ns {
                break;
            }
            self.order.pop_front();
            self.evict_queued(hash, generation);
        }
        self.enforce_capacity();
    }

    /// Remembers a verdict carried over from a failed instance (S18) with
    /// its original time, unless the id has one already or it is past the
    /// TTL at `now`. Entries must come oldest first.
    pub fn restore(&mut self, id: &str, verdict: Verdict, stored_at: u64, now: u64) -> bool {
        if self.capacity == 0 || now.saturating_sub(stored_at) > self.ttl_ns {
            return false;
        }
        let hash = self.hasher.hash_one(id);
        let generation = self.generation + 1;
        match self.table.entry(hash, |c| *c.id == *id, |c| c.hash) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(entry) => {
                entry.insert(Cached {
                    id: Rc::from(id),
                    hash,
                    verdict,
                    decider: None,
                    stored_at,
                    generation,
                });
            }
        }
        self.generation = generation;
        self.order.push_back((hash, generation, stored_at));
        self.enforce_capacity();
        true
    }

    /// Verdicts cached now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Verdicts dropped unused so far (capacity or TTL).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Drops the oldest live verdicts until the capacity holds.
    fn enforce_capacity(&mut self) {
        while self.table.len() > self.capacity {
            let Some((hash, generation, _)) = self.order.pop_front() else {
                break;
            };
            self.evict_queued(hash, generation);
        }
    }

    /// Evicts the verdict inserted as `generation` if it is still there:
    /// found by its stored hash, compared by generation, no string work.
    fn evict_queued(&mut self, hash: u64, generation: u64) {
        if let Ok(entry) = self.table.find_entry(hash, |c| c.generation == generation) {
            entry.remove();
            self.evictions += 1;
        }
    }
}
