//! Host-side waiter slots: where a completion from the guest meets the future
//! that waits for it.
//!
//! # Invariants
//!
//! * A ticket is `generation << 32 | index`. Freeing a slot bumps its
//!   generation, so a stale ticket (a late cancel, a completion for a waiter
//!   already dropped) never touches the slot's next occupant.
//! * A slot is `Waiting` from [`Slots::insert`] until the guest reports an
//!   outcome ([`Slots::complete`]) or the future goes away
//!   ([`Slots::remove`]); `waiting()` counts exactly those, so it equals the
//!   guest's pending waiters whenever the sink's lock is free.
//! * `Done` slots hold an outcome (or the typed error of a registration the
//!   guest refused when the host's queue was flushed) the future has not
//!   taken yet; polling takes it and frees the slot.
//! * Completion hands the stored waker to a wake list instead of calling it:
//!   the sink's lock is held while slots complete, and a waker may run code
//!   (or poll inline), so the lock's owner takes the list with
//!   [`Slots::take_wakers`] and wakes them after dropping its guard (tokio's
//!   `WakeList` pattern). Still no channel per waiter, and no task draining
//!   many receivers (which trips tokio's cooperative budget).

use crate::error::WaitError;
use crate::outcome::Outcome;
use std::task::Waker;

/// How a slot's wait ended.
pub type SlotResult = Result<Outcome, WaitError>;

enum SlotState {
    Free,
    Waiting(Option<Waker>),
    Done(SlotResult),
}

struct Slot {
    generation: u32,
    state: SlotState,
}

/// A generational slab of waiter slots.
#[derive(Default)]
pub struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
    waiting: usize,
    /// Wakers of slots completed since the last `take_wakers`.
    to_wake: Vec<Waker>,
}

fn split(ticket: u64) -> (usize, u32) {
    ((ticket & 0xffff_ffff) as usize, (ticket >> 32) as u32)
}

impl Slots {
    /// An empty slab.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a free slot, now `Waiting`, and returns its ticket.
    pub fn insert(&mut self) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: SlotState::Free,
                });
                // More than 2^32 live waiters would break the ticket layout; the
                // guest's `max-waiters` (a u32) stops far before that.
                (self.slots.len() - 1) as u32
            }
        };
        self.waiting += 1;
        let slot = &mut self.slots[index as usize];
        slot.state = SlotState::Waiting(None);
        (u64::from(slot.generation) << 32) | u64::from(index)
    }

    fn get(&mut self, ticket: u64) -> Option<&mut Slot> {
        let (index, generation) = split(ticket);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation)
    }

    /// Records the guest's outcome for `ticket` and queues its future's waker
    /// (see [`Slots::take_wakers`]). False for a stale ticket or a slot that
    /// is not waiting.
    pub fn complete(&mut self, ticket: u64, outcome: SlotResult) -> bool {
        let Some(slot) = self.get(ticket) else {
            return false;
        };
        if !matches!(slot.state, SlotState::Waiting(_)) {
            return false;
        }
        let SlotState::Waiting(waker) =
            std::mem::replace(&mut slot.state, SlotState::Done(outcome))
        else {
            return false;
        };
        self.waiting -= 1;
        self.to_wake.extend(waker);
        true
    }

    /// The wakers of slots completed since the last call; wake them once
    /// the sink's lock is released.
    pub fn take_wakers(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.to_wake)
    }

    /// Takes the outcome if it arrived (freeing the slot), else stores the
    /// waker. `None` also for a stale ticket.
    pub fn poll(&mut self, ticket: u64, waker: &Waker) -> Option<SlotResult> {
        let slot = self.get(ticket)?;
        match &mut slot.state {
            SlotState::Done(_) => {
                let SlotState::Done(outcome) = std::mem::replace(&mut slot.state, SlotState::Free)
                else {
                    return None;
                };
                self.free_slot(ticket);
                Some(outcome)
            }
            SlotState::Waiting(stored) => {
                if !stored.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *stored = Some(waker.clone());
                }
                None
            }
            SlotState::Free => None,
        }
    }

    /// Frees the slot of a future that went away. True if it was still
    /// waiting (so the guest still holds the waiter and must be told).
    pub fn remove(&mut self, ticket: u64) -> bool {
        let Some(slot) = self.get(ticket) else {
            return false;
        };
        let was_waiting = matches!(slot.state, SlotState::Waiting(_));
        if was_waiting {
            self.waiting -= 1;
        }
        self.free_slot(ticket);
        was_waiting
    }

    /// Whether `ticket`'s slot is still waiting for the guest.
    pub fn is_waiting(&mut self, ticket: u64) -> bool {
        self.get(ticket)
            .is_some_and(|s| matches!(s.state, SlotState::Waiting(_)))
    }

    /// Tickets of every waiting slot (to resolve them all after a reset).
    pub fn waiting_tickets(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, SlotState::Waiting(_)))
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect()
    }

    /// Slots waiting for the guest.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    fn free_slot(&mut self, ticket: u64) {
        let (index, _) = split(ticket);
        if let Some(slot) = self.slots.get_mut(index) {
            slot.state = SlotState::Free;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(index as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn stale_ticket_never_touches_the_slots_next_occupant() {
        let mut slots = Slots::new();
        let first = slots.insert();
        assert!(slots.remove(first));
        let second = slots.insert();
        assert_eq!(split(first).0, split(second).0, "the slot is reused");
        assert!(!slots.complete(first, Ok(Outcome::TimedOut)));
        assert!(!slots.remove(first));
        assert_eq!(slots.waiting(), 1);
        assert!(slots.complete(second, Ok(Outcome::Cancelled)));
        assert_eq!(
            slots.poll(second, Waker::noop()),
            Some(Ok(Outcome::Cancelled))
        );
        assert_eq!(slots.waiting(), 0);
    }

    #[test]
    fn completion_queues_the_waker_instead_of_waking() {
        let mut slots = Slots::new();
        let t = slots.insert();
        assert_eq!(slots.poll(t, Waker::noop()), None);
        assert!(slots.complete(t, Ok(Outcome::TimedOut)));
        let wakers = slots.take_wakers();
        assert_eq!(wakers.len(), 1, "the waker waits for the lock's release");
        assert!(slots.take_wakers().is_empty(), "taken once");
    }

    #[test]
    fn completion_is_kept_until_polled_and_counts_drop_at_once() {
        let mut slots = Slots::new();
        let t = slots.insert();
        assert_eq!(slots.poll(t, Waker::noop()), None);
        assert!(slots.complete(t, Ok(Outcome::TimedOut)));
        assert_eq!(slots.waiting(), 0);
        assert!(
            !slots.complete(t, Ok(Outcome::Cancelled)),
            "one outcome per waiter"
        );
        assert_eq!(slots.poll(t, Waker::noop()), Some(Ok(Outcome::TimedOut)));
        assert_eq!(slots.poll(t, Waker::noop()), None, "taken once");
        assert!(slots.waiting_tickets().is_empty());
    }
}
