//! The verdict memory's bookkeeping (S4, S15): its bounds, eviction by TTL
//! then capacity, oldest first, and who decided. [`Memory`] is one
//! remembered verdict; the entries themselves live in the table
//! (`mod.rs`), whose invariants this keeps.

use super::IdTable;
use super::key::Probe;
use crate::verdict::{Decider, Verdict};
use alloc::boxed::Box;
use core::hash::BuildHasher;

/// A remembered verdict.
pub(super) struct Memory {
    pub(super) verdict: Verdict,
    /// Who decided, when the event said so (boxed: most verdicts name
    /// nobody).
    pub(super) decider: Option<Box<Decider>>,
    pub(super) stored_at: u64,
    /// Unique among the verdicts `order` can still name: it wraps after
    /// 2^32 verdicts, and `order` holds at most twice the remembered ones
    /// plus 64, far fewer than a 4 GiB wasm32 memory could ever remember.
    /// Its `order` entry carries it too.
    pub(super) generation: u32,
}

impl IdTable {
    /// Changes the memory's bounds, evicting at once what no longer fits.
    pub fn set_bounds(&mut self, capacity: u32, ttl_ns: u64, now: u64) {
        self.capacity = capacity as usize;
        self.ttl_ns = ttl_ns;
        self.evict(now);
    }

    /// The verdict remembered for `id`, if it is within the TTL at `now`
    /// (one found past it is dropped now and counted).
    pub fn remembered(&mut self, id: &str, now: u64) -> Option<Verdict> {
        self.decided_by(id, now).map(|(verdict, _)| verdict)
    }

    /// [`IdTable::remembered`], with who decided when the event said so.
    pub fn decided_by(&mut self, id: &str, now: u64) -> Option<(Verdict, Option<&Decider>)> {
        if self.remembered == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(id);
        let probe = Probe::new(id);
        let Ok(entry) = self.table.find_entry(hash, |e| e.key.matches(&probe)) else {
            return None;
        };
        let stale = entry
            .get()
            .memory()
            .map(|m| now.saturating_sub(m.stored_at) > self.ttl_ns)?;
        if stale {
            // Remembered: nobody waits on it, so the entry goes whole.
            self.free_stamps.push(entry.remove().0.stamp);
            self.remembered -= 1;
            self.evictions += 1;
            return None;
        }
        let memory = entry.into_mut().memory()?;
        Some((memory.verdict, memory.decider.as_deref()))
    }

    /// Drops remembered verdicts older than the TTL at `now`, then enforces
    /// the capacity (oldest first).
    pub fn evict(&mut self, now: u64) {
        // The queue is in age order, so the first young entry ends the scan;
        // this costs no lookup unless something expired.
        while let Some(&(hash, generation, stored_at)) = self.order.front() {
            if now.saturating_sub(stored_at) <= self.ttl_ns {
                break;
            }
            self.order.pop_front();
            self.forget(hash, generation);
        }
        self.enforce_capacity();
    }

    /// Verdicts remembered now.
    pub fn remembered_len(&self) -> usize {
        self.remembered
    }

    /// Remembered verdicts dropped so far (capacity or TTL).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Books a newly remembered verdict: its place in `order`, the count,
    /// and the bounds.
    pub(super) fn note_remembered(&mut self, hash: u64, generation: u32, stored_at: u64) {
        self.generation = generation;
        self.remembered += 1;
        self.order.push_back((hash, generation, stored_at));
        self.enforce_capacity();
        // Keep the queue bounded should stale entries ever build up.
        if self.order.len() > 2 * self.remembered + 64 {
            let table = &self.table;
            self.order
                .retain(|&(h, g, _)| table.find(h, |e| e.remembers(g)).is_some());
        }
    }

    /// Drops the oldest remembered verdicts until the capacity holds.
    pub(super) fn enforce_capacity(&mut self) {
        while self.remembered > self.capacity {
            let Some((hash, generation, _)) = self.order.pop_front() else {
                break;
            };
            self.forget(hash, generation);
        }
    }

    /// Forgets the verdict remembered as `generation` if it is still there:
    /// found by its stored hash, compared by generation, no string work;
    /// nobody waits on a remembered id, so its entry goes whole.
    pub(super) fn forget(&mut self, hash: u64, generation: u32) {
        let Ok(entry) = self.table.find_entry(hash, |e| e.remembers(generation)) else {
            return;
        };
        self.free_stamps.push(entry.remove().0.stamp);
        self.remembered -= 1;
        self.evictions += 1;
    }
}
