//! [`VerdictCache`]: verdicts that arrived for ids nobody waits on (S4),
//! bounded by capacity and TTL.
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

use crate::verdict::Verdict;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

struct Cached {
    verdict: Verdict,
    stored_at: u64,
    /// Insertion number, so a stale `order` entry of an overwritten id is
    /// skipped.
    generation: u64,
}

/// A FIFO cache of early verdicts, bounded by capacity and TTL.
#[derive(Default)]
pub struct VerdictCache {
    map: HashMap<Rc<str>, Cached>,
    order: VecDeque<(Rc<str>, u64, u64)>,
    generation: u64,
    capacity: usize,
    ttl_ns: u64,
    evictions: u64,
}

impl VerdictCache {
    /// An empty cache with these bounds (capacity 0 disables it).
    pub fn new(capacity: u32, ttl_ns: u64) -> Self {
        VerdictCache {
            capacity: capacity as usize,
            ttl_ns,
            ..Self::default()
        }
    }

    /// Changes the bounds, evicting at once what no longer fits at `now`.
    pub fn set_bounds(&mut self, capacity: u32, ttl_ns: u64, now: u64) {
        self.capacity = capacity as usize;
        self.ttl_ns = ttl_ns;
        self.evict(now);
    }

    /// Remembers `verdict` for `id` at `now`; a later verdict for the same
    /// id replaces the earlier one (the reviewer changed their mind before
    /// anyone waited).
    pub fn insert(&mut self, id: &str, verdict: Verdict, now: u64) {
        if self.capacity == 0 {
            return;
        }
        self.evict(now);
        self.generation += 1;
        let generation = self.generation;
        let key: Rc<str> = match self.map.get_key_value(id) {
            Some((key, _)) => Rc::clone(key),
            None => Rc::from(id),
        };
        self.map.insert(
            Rc::clone(&key),
            Cached {
                verdict,
                stored_at: now,
                generation,
            },
        );
        self.order.push_back((key, generation, now));
        self.enforce_capacity();
        // Overwrites leave stale queue entries; keep the queue bounded.
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, g, _)| map.get(k).is_some_and(|c| c.generation == *g));
        }
    }

    /// Takes the verdict cached for `id`, if it is still within the TTL.
    pub fn take(&mut self, id: &str, now: u64) -> Option<Verdict> {
        let entry = self.map.remove(id)?;
        if now.saturating_sub(entry.stored_at) > self.ttl_ns {
            self.evictions += 1;
            return None;
        }
        Some(entry.verdict)
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
