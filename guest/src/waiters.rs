//! [`Waiters`]: the pending waiters, by their caller-chosen ticket.
//!
//! A hashbrown `HashTable` of [`Waiter`]s that hold their own ticket, so an
//! entry is 32 bytes and, aligned to 32, never straddles a cache line on
//! wasm32: in a `HashMap<u64, _>` the same 32 bytes sat in 16-byte-aligned
//! buckets and half of them spanned two lines, a second miss on every
//! lookup of a waiter that is no longer in cache (a verdict for a wait
//! registered long ago; BENCHMARKS.md Run N).
//!
//! # Invariants
//!
//! * At most one waiter per ticket.
//! * Tickets are hashed with the registry's seed (S20).
//! * Nothing here panics on any input.

use crate::config::{SeededState, seeded};
use crate::ids::IdRef;
use crate::verdict::Reply;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// One pending waiter.
#[repr(align(32))]
pub struct Waiter {
    /// The caller's ticket.
    pub ticket: u64,
    /// Its id's entry in the id table.
    pub id: IdRef,
    /// When it times out (the registry's clock).
    pub deadline: u64,
    /// How it reports its outcome.
    pub reply: Reply,
}

// A million pending waiters cost a million of these.
#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<Waiter>() == 32);

/// The pending waiters by ticket. See the module invariants.
pub struct Waiters {
    table: HashTable<Waiter>,
    hasher: SeededState,
}

impl Waiters {
    /// Room for `capacity` waiters, tickets hashed with `hash_seed`.
    pub fn with_capacity(capacity: usize, hash_seed: u64) -> Self {
        Waiters {
            table: HashTable::with_capacity(capacity),
            hasher: seeded(hash_seed),
        }
    }

    /// Pending waiters.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Waiters the table holds without growing (it never shrinks).
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// The waiter with this ticket.
    pub fn get(&self, ticket: u64) -> Option<&Waiter> {
        self.table.find(self.hash(ticket), |w| w.ticket == ticket)
    }

    /// Adds `waiter`, replacing one with the same ticket.
    pub fn insert(&mut self, waiter: Waiter) {
        let hasher = &self.hasher;
        match self.table.entry(
            hasher.hash_one(waiter.ticket),
            |w| w.ticket == waiter.ticket,
            |w| hasher.hash_one(w.ticket),
        ) {
            Entry::Occupied(mut old) => *old.get_mut() = waiter,
            Entry::Vacant(slot) => {
                slot.insert(waiter);
            }
        }
    }

    /// Takes the waiter with this ticket out, if `take` says so of it.
    pub fn remove_if(&mut self, ticket: u64, take: impl FnOnce(&Waiter) -> bool) -> Option<Waiter> {
        let found = self
            .table
            .find_entry(self.hash(ticket), |w| w.ticket == ticket)
            .ok()?;
        if !take(found.get()) {
            return None;
        }
        Some(found.remove().0)
    }

    /// Takes the waiter with this ticket out.
    pub fn remove(&mut self, ticket: u64) -> Option<Waiter> {
        self.remove_if(ticket, |_| true)
    }

    /// Every pending waiter, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Waiter> {
        self.table.iter()
    }

    fn hash(&self, ticket: u64) -> u64 {
        self.hasher.hash_one(ticket)
    }
}

impl crate::deadlines::Pending for Waiters {
    fn count(&self) -> usize {
        self.len()
    }

    fn capacity(&self) -> usize {
        Waiters::capacity(self)
    }

    fn entries(&self) -> impl Iterator<Item = (u64, u64)> {
        self.iter().map(|w| (w.deadline, w.ticket))
    }

    fn is_live(&self, ticket: u64, deadline: u64) -> bool {
        self.get(ticket).is_some_and(|w| w.deadline == deadline)
    }
}
