//! The flat operation buffer of `registry.apply` (SPEC.md §5.5): the
//! host queues `register` and `cancel` calls under its sink's mutex and
//! sends them, with at most a trailing `resolve`, as one `list<u8>`, so one
//! guest call and one guest allocation carry a whole round trip (a
//! `list<op>` of strings costs one `cabi_realloc` per string).
//!
//! This module owns the format: the host's [`OpWriter`] and the guest's
//! [`OpReader`] live together and are tested against each other natively,
//! and [`apply`] runs a buffer against a registry (the `apply` export).
//!
//! # Format
//!
//! A sequence of operations, each a tag byte and little-endian fields:
//!
//! | tag | op | fields |
//! |---|---|---|
//! | 1 | register | waiter u64, start-ns u64, timeout-ns u64, id-len u32, id (UTF-8) |
//! | 2 | cancel | waiter u64 |
//! | 3 | resolve | decision u8 (1 approved, 2 denied, as the wire enum), id-len u32, id |
//!
//! `start-ns` is the host clock's reading when the wait was queued: the
//! waiter's deadline is `start-ns + min(timeout-ns, max-timeout)`, so a
//! registration that waited in the queue keeps the deadline it was asked
//! for. An id that is not UTF-8 fails that operation only (its length is
//! known); a truncated operation or an unknown tag ends the buffer.

use crate::registry::{Registered, Registry, RegistryError, Reply, TimeSource};
use crate::verdict::Verdict;
use alloc::vec::Vec;

const REGISTER: u8 = 1;
const CANCEL: u8 = 2;
const RESOLVE: u8 = 3;

/// One decoded operation; ids borrow from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Register `waiter` on `id`, as `registry.register` would at `start_ns`.
    Register {
        /// The host's ticket.
        waiter: u64,
        /// When the host queued it (its clock).
        start_ns: u64,
        /// The wait's timeout.
        timeout_ns: u64,
        /// The request id.
        id: &'a str,
    },
    /// Cancel `waiter` (a no-op if it is not pending).
    Cancel {
        /// The host's ticket.
        waiter: u64,
    },
    /// Deliver `verdict` on `id`, as `registry.resolve`.
    Resolve {
        /// The request id.
        id: &'a str,
        /// The verdict.
        verdict: Verdict,
    },
}

/// Why an operation could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// The id is not UTF-8; only this operation fails.
    BadUtf8,
    /// The decision byte names no verdict; only this operation fails.
    UnknownDecision(u8),
    /// The buffer ends inside an operation, or a tag is unknown: nothing
    /// after it can be read.
    Truncated,
}

/// Appends operations to a buffer (the host's queue).
#[derive(Debug, Default, Clone)]
pub struct OpWriter {
    buf: Vec<u8>,
}

impl OpWriter {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a registration.
    pub fn register(&mut self, waiter: u64, start_ns: u64, timeout_ns: u64, id: &str) {
        self.buf.push(REGISTER);
        self.buf.extend_from_slice(&waiter.to_le_bytes());
        self.buf.extend_from_slice(&start_ns.to_le_bytes());
        self.buf.extend_from_slice(&timeout_ns.to_le_bytes());
        self.id(id);
    }

    /// Queues a cancel.
    pub fn cancel(&mut self, waiter: u64) {
        self.buf.push(CANCEL);
        self.buf.extend_from_slice(&waiter.to_le_bytes());
    }

    /// Queues a verdict.
    pub fn resolve(&mut self, id: &str, verdict: Verdict) {
        self.buf.push(RESOLVE);
        // The wire enum's values (1, 2) always fit a byte.
        self.buf.push(verdict.decision() as i32 as u8);
        self.id(id);
    }

    fn id(&mut self, id: &str) {
        // Ids over 4 GiB cannot be sent at all; the length saturates, the
        // reader then finds the buffer truncated and the op fails.
        let len = u32::try_from(id.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(id.as_bytes());
    }

    /// The encoded operations.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// No operation is queued.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Empties the buffer; gives back memory a burst left behind.
    pub fn clear(&mut self, keep_bytes: usize) {
        self.buf.clear();
        self.buf.shrink_to(keep_bytes);
    }
}

/// Reads operations from a buffer, in order.
#[derive(Debug, Clone)]
pub struct OpReader<'a> {
    rest: &'a [u8],
}

impl<'a> OpReader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        OpReader { rest: buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OpError> {
        if self.rest.len() < n {
            self.rest = &[];
            return Err(OpError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, OpError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn id(&mut self) -> Result<Result<&'a str, OpError>, OpError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let len = usize::try_from(u32::from_le_bytes(b)).map_err(|_| OpError::Truncated)?;
        let bytes = self.take(len)?;
        Ok(core::str::from_utf8(bytes).map_err(|_| OpError::BadUtf8))
    }

    fn op(&mut self, tag: u8) -> Result<Op<'a>, OpError> {
        match tag {
            REGISTER => {
                let waiter = self.u64()?;
                let start_ns = self.u64()?;
                let timeout_ns = self.u64()?;
                let id = self.id()??;
                Ok(Op::Register {
                    waiter,
                    start_ns,
                    timeout_ns,
                    id,
                })
            }
            CANCEL => Ok(Op::Cancel {
                waiter: self.u64()?,
            }),
            RESOLVE => {
                let decision = self.take(1)?[0];
                let id = self.id()?;
                let verdict = Verdict::from_wire(i32::from(decision))
                    .ok_or(OpError::UnknownDecision(decision))?;
                Ok(Op::Resolve { id: id?, verdict })
            }
            _ => {
                self.rest = &[];
                Err(OpError::Truncated)
            }
        }
    }
}

impl<'a> Iterator for OpReader<'a> {
    type Item = Result<Op<'a>, OpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(self.op(tag))
    }
}

/// Why one operation of a buffer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpFailure {
    /// It could not be read.
    Read(OpError),
    /// The registry refused it (a registration's or a verdict's typed
    /// error).
    Refused(RegistryError),
}

/// What [`apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `(index, why)` of each operation that failed, in order.
    pub errors: Vec<(u32, OpFailure)>,
    /// Waiters the buffer's verdicts woke.
    pub woken: u32,
}

/// Applies a buffer's operations to `registry` in order, as the separate
/// calls would: a registration settled at once from the verdict memory is
/// reported as a finished waiter (the registry's `done` list, like any
/// other), a cancel of a ticket that is not pending does nothing, and an
/// operation that fails (unreadable, or refused) fails alone, by index.
pub fn apply<C: TimeSource>(registry: &mut Registry<C>, buf: &[u8]) -> Applied {
    let mut applied = Applied::default();
    for (i, op) in OpReader::new(buf).enumerate() {
        let result = match op {
            Ok(Op::Register {
                waiter,
                start_ns,
                timeout_ns,
                id,
            }) => registry
                .register_from(waiter, id, start_ns, timeout_ns, Reply::Batched)
                .map(|registered| {
                    if let Registered::Settled(outcome) = registered {
                        registry.push_done(waiter, outcome);
                    }
                })
                .map_err(OpFailure::Refused),
            Ok(Op::Cancel { waiter }) => {
                registry.cancel(waiter);
                Ok(())
            }
            Ok(Op::Resolve { id, verdict }) => registry
                .resolve(id, verdict)
                .map(|n| applied.woken = applied.woken.saturating_add(n))
                .map_err(OpFailure::Refused),
            Err(e) => Err(OpFailure::Read(e)),
        };
        if let Err(failure) = result {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            applied.errors.push((index, failure));
        }
    }
    applied
}

#[cfg(test)]
mod tests;
