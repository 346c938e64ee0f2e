//! [`Tokens`]: the waiters' tokens registered on one id, one of them
//! inline (most ids have one waiter, so registering and resolving it
//! allocates nothing), with lazy deletion (see the table's invariants).

use alloc::boxed::Box;
use alloc::vec::Vec;

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
    pub(super) fn push(&mut self, token: u64) {
        match self {
            Tokens::Empty => *self = Tokens::One(token),
            Tokens::One(first) => *self = Tokens::Many(Box::new(alloc::vec![*first, token])),
            Tokens::Many(all) => all.push(token),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Tokens::Empty => 0,
            Tokens::One(_) => 1,
            Tokens::Many(all) => all.len(),
        }
    }

    /// Keeps each token for which `keep` holds, once.
    pub(super) fn compact(&mut self, keep: impl FnMut(&u64) -> bool) {
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
