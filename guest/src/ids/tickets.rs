//! [`Tickets`]: the waiters' tickets registered on one id, one of them
//! inline (most ids have one waiter, so registering and resolving it
//! allocates nothing), with lazy deletion (see the table's invariants).

use alloc::boxed::Box;
use alloc::vec::Vec;

/// The tickets registered on one id. Most ids have one waiter, so one
/// ticket is kept inline: registering and resolving it allocates nothing.
#[derive(Debug, Default)]
pub enum Tickets {
    /// None.
    #[default]
    Empty,
    /// Exactly one.
    One(u64),
    /// Two or more (possibly stale ones among them); boxed, so the common
    /// case keeps an id's entry small.
    Many(Box<Vec<u64>>),
}

impl Tickets {
    pub(super) fn push(&mut self, ticket: u64) {
        match self {
            Tickets::Empty => *self = Tickets::One(ticket),
            Tickets::One(first) => *self = Tickets::Many(Box::new(alloc::vec![*first, ticket])),
            Tickets::Many(all) => all.push(ticket),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Tickets::Empty => 0,
            Tickets::One(_) => 1,
            Tickets::Many(all) => all.len(),
        }
    }

    /// Keeps each ticket for which `keep` holds, once.
    pub(super) fn compact(&mut self, keep: impl FnMut(&u64) -> bool) {
        if let Tickets::Many(all) = self {
            all.sort_unstable();
            all.dedup();
            all.retain(keep);
        }
    }
}

impl IntoIterator for Tickets {
    type Item = u64;
    type IntoIter = core::iter::Chain<core::option::IntoIter<u64>, alloc::vec::IntoIter<u64>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Tickets::Empty => (None, Vec::new()),
            Tickets::One(ticket) => (Some(ticket), Vec::new()),
            Tickets::Many(all) => (None, *all),
        };
        one.into_iter().chain(many)
    }
}
