//! [`IdTable`]: everything the registry knows per request id, in one hash
//! table: the tickets waiting on it, and the verdict remembered for it (the
//! verdict memory of S4 and S15, bounded by capacity and TTL).
//!
//! One table, so a verdict finds its id's waiters and becomes the id's
//! remembered verdict in one lookup, in place: no second table to insert
//! into, no id copied or hashed twice (BENCHMARKS.md Run I measured the
//! second table as most of what S15 cost the resolving ingest path).
//!
//! # Invariants
//!
//! * An entry exists iff a waiter on its id is pending (`live > 0`) or a
//!   verdict is remembered for it, never both: a registration on a
//!   remembered id settles at once, and a verdict turns the id's waiters
//!   into its memory. The entry holds the id itself (inline when short) and
//!   a stamp no other *live* entry has (a removed entry's stamp is reused);
//!   a waiter holds `(hash, stamp)`, so "is this waiter on this id" is an
//!   integer compare. No waiter outlives its id's entry (an entry goes only
//!   once nobody waits on it), so no waiter ever holds a reused stamp.
//! * `tickets` lists the tickets registered on the id, with lazy deletion: a
//!   ticket counts only while the registry's waiter map has it on this very
//!   id (tickets may be reused); the list is compacted once stale tickets
//!   outnumber live ones, and dropped whole when `live` reaches 0.
//! * `order` lists remembered verdicts oldest first as `(hash, generation,
//!   stored_at)`. The generation is unique among the verdicts `order` can
//!   name (it holds at most twice the capacity plus 64), so an
//!   `order` entry finds its own verdict by hash and generation alone; one
//!   whose verdict is gone is stale, skipped, and pruned when stale ones
//!   outnumber live ones.
//! * At most `capacity` verdicts are remembered. Eviction is oldest first,
//!   by TTL (a scan of `order`'s front that stops at the first young entry),
//!   then by capacity; each verdict dropped is counted. A verdict past its
//!   TTL is never handed out, even before an eviction pass drops it.
//! * Nothing here panics on any input.
//!
//! Files: this one holds the table and its entries; `key.rs` how an entry
//! holds its id; `tickets.rs` an id's waiter tickets; `memory.rs` the verdict
//! memory's bounds and eviction.

mod key;
mod memory;
mod tickets;

pub use tickets::Tickets;

use crate::config::{SeededState, seeded};
use crate::verdict::{Decider, Verdict};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use key::{Key, Probe};
use memory::Memory;

/// What [`IdTable::remember`] found.
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

/// What the table holds for an id: waiters, or its remembered verdict,
/// never both (a registration on a remembered id settles at once; a
/// verdict turns the id's waiters into its memory).
enum Held {
    /// At least one waiter is pending (`live > 0`) on the id.
    Waiting { tickets: Tickets, live: u32 },
    /// The id's verdict is remembered; nobody waits on it.
    Remembered(Memory),
}

/// One request id, in one cache line (the oldest entry's line is what
/// evicting at capacity costs). Aligned to the line, so the table's
/// buckets are too: unaligned, most entries straddled two lines, and every
/// lookup, insert and eviction touched both (BENCHMARKS.md Run N).
#[repr(align(64))]
struct IdState {
    key: Key,
    /// Unique among live entries: how a waiter names its id's entry
    /// ([`IdRef`]) without holding a copy of the id.
    stamp: u32,
    held: Held,
}

#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<IdState>() == 64);

impl IdState {
    fn memory(&self) -> Option<&Memory> {
        match &self.held {
            Held::Remembered(memory) => Some(memory),
            Held::Waiting { .. } => None,
        }
    }

    fn remembers(&self, generation: u32) -> bool {
        self.memory().is_some_and(|m| m.generation == generation)
    }
}

/// How a waiter names its id's entry: the id's hash and the entry's stamp,
/// so cancel and expiry find it without hashing or comparing the id, and a
/// ticket is "on this id" iff its waiter holds this very `IdRef` (tickets
/// may be reused; a stamp names one live entry). Packed to 12 bytes, so a
/// waiter, its ticket included, is 32 bytes on wasm32 (most of the memory
/// a pending waiter costs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct IdRef {
    hash: u64,
    stamp: u32,
}

/// The waiters that a newly remembered verdict must now resolve: their
/// id's [`IdRef`] (waiters on it hold the same) and its ticket list.
pub struct Waiting {
    /// The id's entry.
    pub id: IdRef,
    /// Tickets registered on it (some may be stale).
    pub tickets: Tickets,
}

/// Per-id waiters and remembered verdicts. See the module invariants.
pub struct IdTable {
    table: HashTable<IdState>,
    hasher: SeededState,
    order: VecDeque<(u64, u32, u64)>,
    generation: u32,
    /// Stamps of removed entries, for reuse (4 bytes for each entry the
    /// table held at its fullest); `next_stamp` has never been used. Live
    /// entries never number 2^32 in a 4 GiB memory, so stamps never run
    /// out.
    free_stamps: Vec<u32>,
    next_stamp: u32,
    remembered: usize,
    waiting: usize,
    capacity: usize,
    ttl_ns: u64,
    evictions: u64,
}

impl IdTable {
    /// An empty table with these memory bounds (capacity 0: nothing is
    /// remembered), hashing with `hash_seed` (S20).
    pub fn new(capacity: u32, ttl_ns: u64, hash_seed: u64) -> Self {
        IdTable {
            table: HashTable::new(),
            hasher: seeded(hash_seed),
            order: VecDeque::new(),
            generation: 0,
            free_stamps: Vec::new(),
            next_stamp: 0,
            remembered: 0,
            waiting: 0,
            capacity: capacity as usize,
            ttl_ns,
            evictions: 0,
        }
    }

    /// Rehashes every entry with a new seed (S20) and makes room for
    /// `additional` more ids. Only while nobody waits: a waiter's
    /// [`IdRef`] holds its id's hash.
    pub fn reseed(&mut self, hash_seed: u64, additional: usize) {
        self.hasher = seeded(hash_seed);
        let mut entries: Vec<IdState> = self.table.drain().collect();
        let mut table = HashTable::with_capacity(entries.len().saturating_add(additional));
        // `order` follows the memory's age, which is the generation's order.
        entries.sort_unstable_by_key(|e| e.memory().map_or(0, |m| m.generation));
        self.order.clear();
        let hasher = &self.hasher;
        for entry in entries {
            let hash = hasher.hash_one(entry.key.as_str());
            if let Some(m) = entry.memory() {
                self.order.push_back((hash, m.generation, m.stored_at));
            }
            table.insert_unique(hash, entry, |e| hasher.hash_one(e.key.as_str()));
        }
        self.table = table;
    }

    /// Adds `ticket` to `id`'s waiters; returns the id's [`IdRef`] (for
    /// [`IdTable::remove_ticket`]), or the verdict remembered for `id`, which
    /// never takes a waiter (callers ask [`IdTable::remembered`] first, which
    /// also drops a memory past its TTL).
    pub fn add_ticket(&mut self, id: &str, ticket: u64) -> Result<IdRef, Verdict> {
        let (hash, probe, entry) = lookup(&mut self.table, &self.hasher, id);
        let entry = match entry {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(vacant) => {
                let stamp = take_stamp(&mut self.free_stamps, &mut self.next_stamp);
                let entry = vacant.insert(IdState {
                    key: probe.key(),
                    stamp,
                    held: Held::Waiting {
                        tickets: Tickets::Empty,
                        live: 0,
                    },
                });
                entry.into_mut()
            }
        };
        let (tickets, live) = match &mut entry.held {
            Held::Waiting { tickets, live } => (tickets, live),
            Held::Remembered(memory) => return Err(memory.verdict),
        };
        tickets.push(ticket);
        *live += 1;
        if *live == 1 {
            self.waiting += 1;
        }
        Ok(IdRef {
            hash,
            stamp: entry.stamp,
        })
    }

    /// One live waiter on `id` is gone. `still_waiting(ticket)` says whether
    /// a listed ticket is still a pending waiter on this id (for
    /// compaction). Found by the stored hash and stamp: no hashing, no
    /// string compare.
    pub fn remove_ticket(&mut self, id: IdRef, mut still_waiting: impl FnMut(u64) -> bool) {
        let Ok(mut entry) = self.table.find_entry(id.hash, |e| e.stamp == id.stamp) else {
            return;
        };
        let Held::Waiting { tickets, live } = &mut entry.get_mut().held else {
            return;
        };
        *live = live.saturating_sub(1);
        if *live == 0 {
            self.waiting = self.waiting.saturating_sub(1);
            self.free_stamps.push(entry.remove().0.stamp);
        } else if tickets.len() > 2 * *live as usize + 8 {
            // Keep each live ticket of this id once (a ticket reused on the
            // same id may be listed twice).
            tickets.compact(|&t| still_waiting(t));
        }
    }

    /// Remembers `verdict` (decided by `decider`) for `id` at `now` unless
    /// a verdict is remembered for it already (S15: the first verdict
    /// wins), in one lookup. For a new verdict, also hands back the id's
    /// waiters, to be resolved (the entry is the id's memory from now on).
    pub fn remember(
        &mut self,
        id: &str,
        verdict: Verdict,
        decider: Option<Decider>,
        now: u64,
    ) -> (Remembered, Option<Waiting>) {
        // Whatever is past its TTL goes first, so a memory found below is
        // still remembered.
        self.evict(now);
        let keep = self.capacity > 0;
        let generation = self.generation.wrapping_add(1);
        let memory = || {
            Held::Remembered(Memory {
                verdict,
                decider: decider.map(Box::new),
                stored_at: now,
                generation,
            })
        };
        let (hash, probe, entry) = lookup(&mut self.table, &self.hasher, id);
        let mut entry = match entry {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(vacant) => {
                if keep {
                    vacant.insert(IdState {
                        key: probe.key(),
                        stamp: take_stamp(&mut self.free_stamps, &mut self.next_stamp),
                        held: memory(),
                    });
                    self.note_remembered(hash, generation, now);
                }
                return (Remembered::New, None);
            }
        };
        let state = entry.get_mut();
        let (tickets, live) = match &mut state.held {
            Held::Remembered(memory) => {
                let found = if memory.verdict == verdict {
                    Remembered::Repeat
                } else {
                    Remembered::Conflict
                };
                return (found, None);
            }
            Held::Waiting { tickets, live } => (core::mem::take(tickets), *live),
        };
        let waiting = (live > 0).then_some(Waiting {
            id: IdRef {
                hash,
                stamp: state.stamp,
            },
            tickets,
        });
        if live > 0 {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if keep {
            state.held = memory();
            self.note_remembered(hash, generation, now);
        } else {
            self.free_stamps.push(entry.remove().0.stamp);
        }
        (Remembered::New, waiting)
    }

    /// Remembers a verdict carried over from a failed instance (S18) with
    /// its original time, unless the id has one already or it is past the
    /// TTL at `now`. Entries must come oldest first.
    pub fn restore(&mut self, id: &str, verdict: Verdict, stored_at: u64, now: u64) -> bool {
        if self.capacity == 0 || now.saturating_sub(stored_at) > self.ttl_ns {
            return false;
        }
        let generation = self.generation.wrapping_add(1);
        let memory = Held::Remembered(Memory {
            verdict,
            decider: None,
            stored_at,
            generation,
        });
        let (hash, probe, entry) = lookup(&mut self.table, &self.hasher, id);
        match entry {
            // A fresh instance has no waiters yet, and a remembered
            // verdict is never overwritten.
            Entry::Occupied(_) => return false,
            Entry::Vacant(vacant) => {
                vacant.insert(IdState {
                    key: probe.key(),
                    stamp: take_stamp(&mut self.free_stamps, &mut self.next_stamp),
                    held: memory,
                });
            }
        }
        self.note_remembered(hash, generation, stored_at);
        true
    }

    /// Ids with at least one pending waiter.
    pub fn waiting_ids(&self) -> usize {
        self.waiting
    }
}

/// `id`'s entry in `table`, occupied or vacant, with the id's hash and
/// probe (for a new entry's key): one hash, one probe.
#[inline]
fn lookup<'t, 'i>(
    table: &'t mut HashTable<IdState>,
    hasher: &SeededState,
    id: &'i str,
) -> (u64, Probe<'i>, Entry<'t, IdState>) {
    let hash = hasher.hash_one(id);
    let probe = Probe::new(id);
    let entry = table.entry(
        hash,
        |e| e.key.matches(&probe),
        |e| hasher.hash_one(e.key.as_str()),
    );
    (hash, probe, entry)
}

/// A stamp no live entry has: a removed entry's, or a new one.
fn take_stamp(free: &mut Vec<u32>, next: &mut u32) -> u32 {
    free.pop().unwrap_or_else(|| {
        let stamp = *next;
        *next = stamp.wrapping_add(1);
        stamp
    })
}
