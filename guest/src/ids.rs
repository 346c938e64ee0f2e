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
//!   verdict is remembered for it, never both: a registration on a
//!   remembered id settles at once, and a verdict turns the id's waiters
//!   into its memory. The entry holds the id itself (inline when short) and
//!   a stamp no other *live* entry has (a removed entry's stamp is reused);
//!   a waiter holds `(hash, stamp)`, so "is this waiter on this id" is an
//!   integer compare. No waiter outlives its id's entry (an entry goes only
//!   once nobody waits on it), so no waiter ever holds a reused stamp.
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

/// Longest id kept inside its entry; longer ones are boxed.
const INLINE_ID: usize = 23;

/// A request id, kept inside its entry when it is short (most are), so
/// comparing it reads the entry's own cache line and a new id allocates
/// nothing: the interned `Rc<str>` this replaced cost an allocation per
/// new id and a `free` per eviction (BENCHMARKS.md Run N: with the rest of
/// that run, ~560 fewer instructions per resolving frame).
enum Key {
    /// Up to [`INLINE_ID`] bytes; `len` is the length plus one (its zero
    /// is the niche that tells a boxed key apart).
    Inline {
        len: core::num::NonZeroU8,
        bytes: [u8; INLINE_ID],
    },
    /// A longer id.
    Boxed(Box<str>),
}

impl Key {
    fn bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => {
                bytes.get(..usize::from(len.get() - 1)).unwrap_or_default()
            }
            Key::Boxed(id) => id.as_bytes(),
        }
    }

    /// Whether this is the id `probe` looks for.
    fn matches(&self, probe: &Probe<'_>) -> bool {
        match (self, probe) {
            (Key::Inline { len, bytes }, Probe::Short { len: l, bytes: b }) => {
                len == l && words(bytes) == words(b)
            }
            (Key::Boxed(id), Probe::Long(wanted)) => id.as_bytes() == wanted.as_bytes(),
            _ => false,
        }
    }

    /// The id (made from a `&str`, so always UTF-8).
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

/// An id being looked up, prepared once per lookup: a short one padded as
/// an inline [`Key`] is, so comparing it with an entry's key is a length
/// and three word compares. (A slice compare is a call to `memcmp`, a byte
/// loop in wasm: ~250 instructions per resolving frame, BENCHMARKS.md Run
/// N.)
enum Probe<'a> {
    /// At most [`INLINE_ID`] bytes, zero-padded.
    Short {
        len: core::num::NonZeroU8,
        bytes: [u8; INLINE_ID],
    },
    /// A longer id.
    Long(&'a str),
}

impl<'a> Probe<'a> {
    fn new(id: &'a str) -> Self {
        let len = u8::try_from(id.len() + 1)
            .ok()
            .and_then(core::num::NonZeroU8::new);
        match (len, id.len() <= INLINE_ID) {
            (Some(len), true) => {
                let mut bytes = [0; INLINE_ID];
                if let Some(head) = bytes.get_mut(..id.len()) {
                    head.copy_from_slice(id.as_bytes());
                }
                Probe::Short { len, bytes }
            }
            _ => Probe::Long(id),
        }
    }

    /// The key an entry for this id holds.
    fn key(&self) -> Key {
        match self {
            Probe::Short { len, bytes } => Key::Inline {
                len: *len,
                bytes: *bytes,
            },
            Probe::Long(id) => Key::Boxed(Box::from(*id)),
        }
    }
}

/// A padded inline id as three words (the last overlaps the second by a
/// byte: equal words, equal bytes).
fn words(bytes: &[u8; INLINE_ID]) -> [u64; 3] {
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    [word(0), word(8), word(INLINE_ID - 8)]
}

/// What the table holds for an id: waiters, or its remembered verdict,
/// never both (a registration on a remembered id settles at once; a
/// verdict turns the id's waiters into its memory).
enum State {
    /// At least one waiter is pending (`live > 0`) on the id.
    Waiting { tokens: Tokens, live: u32 },
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
    state: State,
}

#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<IdState>() == 64);

impl IdState {
    fn memory(&self) -> Option<&Memory> {
        match &self.state {
            State::Remembered(memory) => Some(memory),
            State::Waiting { .. } => None,
        }
    }

    fn remembers(&self, generation: u32) -> bool {
        self.memory().is_some_and(|m| m.generation == generation)
    }
}

/// How a waiter names its id's entry: the id's hash and the entry's stamp,
/// so cancel and expiry find it without hashing or comparing the id, and a
/// token is "on this id" iff its waiter holds this very `IdRef` (tokens
/// may be reused; a stamp names one live entry). Packed to 12 bytes, so a
/// waiter, its token included, is 32 bytes on wasm32 (most of the memory
/// a pending waiter costs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct IdRef {
    hash: u64,
    stamp: u32,
}

/// The waiters that a newly remembered verdict must now resolve: their
/// id's [`IdRef`] (waiters on it hold the same) and its token list.
pub struct Waiting {
    /// The id's entry.
    pub id: IdRef,
    /// Tokens registered on it (some may be stale).
    pub tokens: Tokens,
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

    /// Adds `token` to `id`'s waiters; returns the id's [`IdRef`] (for
    /// [`IdTable::remove_token`]), or the verdict remembered for `id`, which
    /// never takes a waiter (callers ask [`IdTable::remembered`] first, which
    /// also drops a memory past its TTL).
    pub fn add_token(&mut self, id: &str, token: u64) -> Result<IdRef, Verdict> {
        let (hash, probe, entry) = lookup(&mut self.table, &self.hasher, id);
        let entry = match entry {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(vacant) => {
                let stamp = take_stamp(&mut self.free_stamps, &mut self.next_stamp);
                let entry = vacant.insert(IdState {
                    key: probe.key(),
                    stamp,
                    state: State::Waiting {
                        tokens: Tokens::Empty,
                        live: 0,
                    },
                });
                entry.into_mut()
            }
        };
        let (tokens, live) = match &mut entry.state {
            State::Waiting { tokens, live } => (tokens, live),
            State::Remembered(memory) => return Err(memory.verdict),
        };
        tokens.push(token);
        *live += 1;
        if *live == 1 {
            self.waiting += 1;
        }
        Ok(IdRef {
            hash,
            stamp: entry.stamp,
        })
    }

    /// One live waiter on `id` is gone. `still_waiting(token)` says whether
    /// a listed token is still a pending waiter on this id (for
    /// compaction). Found by the stored hash and stamp: no hashing, no
    /// string compare.
    pub fn remove_token(&mut self, id: IdRef, mut still_waiting: impl FnMut(u64) -> bool) {
        let Ok(mut entry) = self.table.find_entry(id.hash, |e| e.stamp == id.stamp) else {
            return;
        };
        let State::Waiting { tokens, live } = &mut entry.get_mut().state else {
            return;
        };
        *live = live.saturating_sub(1);
        if *live == 0 {
            self.waiting = self.waiting.saturating_sub(1);
            self.free_stamps.push(entry.remove().0.stamp);
        } else if tokens.len() > 2 * *live as usize + 8 {
            // Keep each live token of this id once (a token reused on the
            // same id may be listed twice).
            tokens.compact(|&t| still_waiting(t));
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
            State::Remembered(Memory {
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
                        state: memory(),
                    });
                    self.note_remembered(hash, generation, now);
                }
                return (Remembered::New, None);
            }
        };
        let state = entry.get_mut();
        let (tokens, live) = match &mut state.state {
            State::Remembered(memory) => {
                let found = if memory.verdict == verdict {
                    Remembered::Repeat
                } else {
                    Remembered::Conflict
                };
                return (found, None);
            }
            State::Waiting { tokens, live } => (core::mem::take(tokens), *live),
        };
        let waiting = (live > 0).then_some(Waiting {
            id: IdRef {
                hash,
                stamp: state.stamp,
            },
            tokens,
        });
        if live > 0 {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if keep {
            state.state = memory();
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
        let memory = State::Remembered(Memory {
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
                    state: memory,
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
            self.order
                .retain(|&(h, g, _)| table.find(h, |e| e.remembers(g)).is_some());
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
    /// found by its stored hash, compared by generation, no string work;
    /// nobody waits on a remembered id, so its entry goes whole.
    fn forget(&mut self, hash: u64, generation: u32) {
        let Ok(entry) = self.table.find_entry(hash, |e| e.remembers(generation)) else {
            return;
        };
        self.free_stamps.push(entry.remove().0.stamp);
        self.remembered -= 1;
        self.evictions += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    /// Every byte of a short id counts, its length too (an id may end in
    /// NUL bytes, which padding also is), and short and long never match.
    #[test]
    fn a_key_matches_exactly_its_own_id() {
        let mut ids: Vec<String> = ["", "a", "a\0", "a\0\0"].map(String::from).to_vec();
        for len in [7, 8, 9, 15, 16, 22, 23, 24, 40] {
            let base = "k".repeat(len);
            ids.push(base.clone());
            for at in 0..len {
                let mut changed = base.clone().into_bytes();
                changed[at] = b'x';
                ids.push(String::from_utf8(changed).unwrap());
            }
        }
        for (i, id) in ids.iter().enumerate() {
            let key = Probe::new(id).key();
            assert_eq!(key.as_str(), id);
            for (j, other) in ids.iter().enumerate() {
                assert_eq!(
                    key.matches(&Probe::new(other)),
                    i == j,
                    "{id:?} vs {other:?}"
                );
            }
        }
        assert!(matches!(
            Probe::new(&"k".repeat(23)).key(),
            Key::Inline { .. }
        ));
        assert!(matches!(Probe::new(&"k".repeat(24)).key(), Key::Boxed(_)));
    }
}
