//! [`IdTable`]: everything the registry knows per request id, in one hash
//! table: the tokens waiting on it, and the verdict remembered for it (the
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
//!   verdict is remembered for it. Its `id` is the one interned copy: every
//!   waiter on it holds a clone of that `Rc<str>`, so "is this waiter on
//!   this id" is a pointer compare.
//! * `tokens` lists the tokens registered on the id, with lazy deletion: a
//!   token counts only while the registry's waiter map has it on this very
//!   id (tokens may be reused); the list is compacted once stale tokens
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

use crate::config::{SeededState, seeded};
use crate::verdict::{Decider, Verdict};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

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

/// The tokens registered on one id. Most ids have one waiter, so one
/// token is kept inline: registering and resolving it allocates nothing.
#[derive(Debug, Default)]
pub enum Tokens {
    /// None.
    #[default]
    Empty,
    /// Exactly one.
    One(u64),
    /// Two or more (possibly stale ones among them); boxed, so the common
    /// case keeps an id's entry small.
    Many(Box<Vec<u64>>),
}

impl Tokens {
    fn push(&mut self, token: u64) {
        match self {
            Tokens::Empty => *self = Tokens::One(token),
            Tokens::One(first) => *self = Tokens::Many(Box::new(alloc::vec![*first, token])),
            Tokens::Many(all) => all.push(token),
        }
    }

    fn len(&self) -> usize {
        match self {
            Tokens::Empty => 0,
            Tokens::One(_) => 1,
            Tokens::Many(all) => all.len(),
        }
    }

    /// Keeps each token for which `keep` holds, once.
    fn compact(&mut self, keep: impl FnMut(&u64) -> bool) {
        if let Tokens::Many(all) = self {
            all.sort_unstable();
            all.dedup();
            all.retain(keep);
        }
    }
}

impl IntoIterator for Tokens {
    type Item = u64;
    type IntoIter = core::iter::Chain<core::option::IntoIter<u64>, alloc::vec::IntoIter<u64>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Tokens::Empty => (None, Vec::new()),
            Tokens::One(token) => (Some(token), Vec::new()),
            Tokens::Many(all) => (None, *all),
        };
        one.into_iter().chain(many)
    }
}

/// A remembered verdict.
struct Memory {
    verdict: Verdict,
    /// Who decided, when the event said so (boxed: most verdicts name
    /// nobody).
    decider: Option<Box<Decider>>,
    stored_at: u64,
    /// Unique among the verdicts `order` can still name: it wraps after
    /// 2^32 verdicts, and `order` holds at most twice the remembered ones
    /// plus 64, far fewer than a 4 GiB wasm32 memory could ever remember.
    /// Its `order` entry carries it too.
    generation: u32,
}

/// One request id, in at most 64 bytes: one cache line (the oldest
/// entry's line is what evicting at capacity costs).
struct IdState {
    id: Rc<str>,
    tokens: Tokens,
    live: u32,
    memory: Option<Memory>,
}

const _: () = assert!(core::mem::size_of::<IdState>() <= 64);

/// The waiters that a newly remembered verdict must now resolve: the
/// interned id (waiters on it hold the same pointer) and its token list.
pub struct Waiting {
    /// The interned id.
    pub id: Rc<str>,
    /// Tokens registered on it (some may be stale).
    pub tokens: Tokens,
}

/// Per-id waiters and remembered verdicts. See the module invariants.
pub struct IdTable {
    table: HashTable<IdState>,
    hasher: SeededState,
    order: VecDeque<(u64, u32, u64)>,
    generation: u32,
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
            remembered: 0,
            waiting: 0,
            capacity: capacity as usize,
            ttl_ns,
            evictions: 0,
        }
    }

    /// Rehashes every entry with a new seed (S20) and makes room for
    /// `additional` more ids.
    pub fn reseed(&mut self, hash_seed: u64, additional: usize) {
        self.hasher = seeded(hash_seed);
        let mut entries: Vec<IdState> = self.table.drain().collect();
        let mut table = HashTable::with_capacity(entries.len().saturating_add(additional));
        // `order` follows the memory's age, which is the generation's order.
        entries.sort_unstable_by_key(|e| e.memory.as_ref().map_or(0, |m| m.generation));
        self.order.clear();
        let hasher = &self.hasher;
        for entry in entries {
            let hash = hasher.hash_one(&*entry.id);
            if let Some(m) = &entry.memory {
                self.order.push_back((hash, m.generation, m.stored_at));
            }
            table.insert_unique(hash, entry, |e| hasher.hash_one(&*e.id));
        }
        self.table = table;
    }

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
        let Ok(mut entry) = self.table.find_entry(hash, |e| *e.id == *id) else {
            return None;
        };
        let stale = entry
            .get()
            .memory
            .as_ref()
            .map(|m| now.saturating_sub(m.stored_at) > self.ttl_ns)?;
        if stale {
            entry.get_mut().memory = None;
            self.remembered -= 1;
            self.evictions += 1;
            if entry.get().live == 0 {
                entry.remove();
            }
            return None;
        }
        let memory = entry.into_mut().memory.as_ref()?;
        Some((memory.verdict, memory.decider.as_deref()))
    }

    /// Adds `token` to `id`'s waiters; returns the interned id (for
    /// [`IdTable::remove_token`]).
    pub fn add_token(&mut self, id: &str, token: u64) -> Rc<str> {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id);
        let entry = self
            .table
            .entry(hash, |e| *e.id == *id, |e| hasher.hash_one(&*e.id))
            .or_insert_with(|| IdState {
                id: Rc::from(id),
                tokens: Tokens::Empty,
                live: 0,
                memory: None,
            })
            .into_mut();
        entry.tokens.push(token);
        entry.live += 1;
        if entry.live == 1 {
            self.waiting += 1;
        }
        Rc::clone(&entry.id)
    }

    /// One live waiter on `id` (the interned pointer) is gone.
    /// `still_waiting(token)` says whether a listed token is still a pending
    /// waiter on this id (for compaction). The id is hashed again rather
    /// than stored with every waiter: a million waiters keep 8 MB less.
    pub fn remove_token(&mut self, id: &Rc<str>, mut still_waiting: impl FnMut(u64) -> bool) {
        let hash = self.hasher.hash_one(&**id);
        let Ok(mut entry) = self.table.find_entry(hash, |e| Rc::ptr_eq(&e.id, id)) else {
            return;
        };
        let state = entry.get_mut();
        state.live = state.live.saturating_sub(1);
        if state.live == 0 {
            self.waiting = self.waiting.saturating_sub(1);
            state.tokens = Tokens::Empty;
            if state.memory.is_none() {
                entry.remove();
            }
        } else if state.tokens.len() > 2 * state.live as usize + 8 {
            // Keep each live token of this id once (a token reused on the
            // same id may be listed twice).
            state.tokens.compact(|&t| still_waiting(t));
        }
    }

    /// Remembers `verdict` (decided by `decider`) for `id` at `now` unless
    /// a verdict is remembered for it already (S15: the first verdict
    /// wins), in one lookup. For a new verdict, also hands back the id's
    /// waiters, to be resolved (their entry keeps no tokens from now on).
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
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id);
        let keep = self.capacity > 0;
        let generation = self.generation.wrapping_add(1);
        let mut entry = match self
            .table
            .entry(hash, |e| *e.id == *id, |e| hasher.hash_one(&*e.id))
        {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(vacant) => {
                if keep {
                    vacant.insert(IdState {
                        id: Rc::from(id),
                        tokens: Tokens::Empty,
                        live: 0,
                        memory: Some(Memory {
                            verdict,
                            decider: decider.map(Box::new),
                            stored_at: now,
                            generation,
                        }),
                    });
                    self.note_remembered(hash, generation, now);
                }
                return (Remembered::New, None);
            }
        };
        let state = entry.get_mut();
        if let Some(memory) = &state.memory {
            let found = if memory.verdict == verdict {
                Remembered::Repeat
            } else {
                Remembered::Conflict
            };
            return (found, None);
        }
        let waiting = (state.live > 0).then(|| Waiting {
            id: Rc::clone(&state.id),
            tokens: core::mem::take(&mut state.tokens),
        });
        if state.live > 0 {
            state.live = 0;
            self.waiting = self.waiting.saturating_sub(1);
        }
        if keep {
            state.memory = Some(Memory {
                verdict,
                decider: decider.map(Box::new),
                stored_at: now,
                generation,
            });
            self.note_remembered(hash, generation, now);
        } else {
            entry.remove();
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
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id);
        let generation = self.generation.wrapping_add(1);
        let memory = Memory {
            verdict,
            decider: None,
            stored_at,
            generation,
        };
        match self
            .table
            .entry(hash, |e| *e.id == *id, |e| hasher.hash_one(&*e.id))
        {
            Entry::Occupied(mut entry) => {
                let state = entry.get_mut();
                // A fresh instance has no waiters yet; never overwrite.
                if state.memory.is_some() || state.live > 0 {
                    return false;
                }
                state.memory = Some(memory);
            }
            Entry::Vacant(vacant) => {
                vacant.insert(IdState {
                    id: Rc::from(id),
                    tokens: Tokens::Empty,
                    live: 0,
                    memory: Some(memory),
                });
            }
        }
        self.note_remembered(hash, generation, stored_at);
        true
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

    /// Ids with at least one pending waiter.
    pub fn waiting_ids(&self) -> usize {
        self.waiting
    }

    /// Remembered verdicts dropped so far (capacity or TTL).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Books a newly remembered verdict: its place in `order`, the count,
    /// and the bounds.
    fn note_remembered(&mut self, hash: u64, generation: u32, stored_at: u64) {
        self.generation = generation;
        self.remembered += 1;
        self.order.push_back((hash, generation, stored_at));
        self.enforce_capacity();
        // Keep the queue bounded should stale entries ever build up.
        if self.order.len() > 2 * self.remembered + 64 {
            let table = &self.table;
            self.order.retain(|&(h, g, _)| {
                table
                    .find(h, |e| e.memory.as_ref().is_some_and(|m| m.generation == g))
                    .is_some()
            });
        }
    }

    /// Drops the oldest remembered verdicts until the capacity holds.
    fn enforce_capacity(&mut self) {
        while self.remembered > self.capacity {
            let Some((hash, generation, _)) = self.order.pop_front() else {
                break;
            };
            self.forget(hash, generation);
        }
    }

    /// Forgets the verdict remembered as `generation` if it is still there:
    /// found by its stored hash, compared by generation, no string work.
    fn forget(&mut self, hash: u64, generation: u32) {
        let Ok(mut entry) = self.table.find_entry(hash, |e| {
            e.memory
                .as_ref()
                .is_some_and(|m| m.generation == generation)
        }) else {
            return;
        };
        entry.get_mut().memory = None;
        self.remembered -= 1;
        self.evictions += 1;
        if entry.get().live == 0 {
            entry.remove();
        }
    }
}
