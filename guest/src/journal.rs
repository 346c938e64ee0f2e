//! The verdict journal: how the verdict memory survives a reset (S18).
//!
//! Every verdict a frame makes the registry newly remember is appended to a
//! flat byte buffer that the next export call hands to the host (one
//! `list<u8>`, no per-verdict string). A direct verdict (`resolve`, an
//! `apply`'s resolve operation) is journaled by its caller, who knows it,
//! with [`append`]: the Rust host calls this very function, and every other
//! host's encoder is checked against `tests/vectors/journal.json`. The host
//! keeps the entries, bounded like the memory itself, and gives them to a
//! fresh instance after a trap
//! ([`crate::registry::Registry::restore`]), so a verdict applied before the
//! trap stays final after it.
//!
//! The format (SPEC.md §5.6, vectors in `tests/vectors/journal.json`) is
//! this module's; one entry: the decision (1 approved, 2 denied) as one byte, the time it
//! was remembered as a little-endian `u64`, the request id's length as a
//! little-endian `u32`, then the id's UTF-8 bytes. [`entries`] reads them
//! back without trusting the bytes: a malformed buffer ends the walk, it
//! never panics.

use crate::verdict::Verdict;
use alloc::vec::Vec;

/// Bytes of an entry before the request id.
pub const HEADER_BYTES: usize = 1 + 8 + 4;

/// Appends one entry to `journal`.
pub fn append(journal: &mut Vec<u8>, id: &str, verdict: Verdict, stored_at: u64) {
    journal.push(verdict.decision() as u8);
    journal.extend_from_slice(&stored_at.to_le_bytes());
    journal.extend_from_slice(&u32::try_from(id.len()).unwrap_or(u32::MAX).to_le_bytes());
    journal.extend_from_slice(id.as_bytes());
}

/// One entry read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The request id.
    pub id: &'a str,
    /// The verdict.
    pub verdict: Verdict,
    /// When it was remembered (the registry's clock).
    pub stored_at: u64,
}

/// The entries of `journal`, in order; stops at the first malformed one.
pub fn entries(journal: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    let mut rest = journal;
    core::iter::from_fn(move || {
        let (entry, tail) = read(rest)?;
        rest = tail;
        Some(entry)
    })
}

/// When each entry of `journal` was remembered, in order, reading only
/// the entries' headers: what a host needs to bound the journal it keeps.
/// Stops where [`entries`] would, except that it does not check that ids
/// are UTF-8 (the fresh guest re-checks every entry it restores).
pub fn stored_times(journal: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut rest = journal;
    core::iter::from_fn(move || {
        let (header, tail) = read_header(rest)?;
        rest = tail.get(header.id_len..)?;
        Some(header.stored_at)
    })
}

/// An entry's header.
struct Header {
    verdict: Verdict,
    stored_at: u64,
    id_len: usize,
}

/// The header in front of `bytes` and what follows it.
fn read_header(bytes: &[u8]) -> Option<(Header, &[u8])> {
    if bytes.len() < HEADER_BYTES {
        return None;
    }
    let (&decision, rest) = bytes.split_first()?;
    let verdict = Verdict::from_wire(i32::from(decision))?;
    let (at, rest) = rest.split_at_checked(8)?;
    let (len, rest) = rest.split_at_checked(4)?;
    let header = Header {
        verdict,
        stored_at: u64::from_le_bytes(at.try_into().ok()?),
        id_len: usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?,
    };
    Some((header, rest))
}

fn read(bytes: &[u8]) -> Option<(Entry<'_>, &[u8])> {
    let (header, rest) = read_header(bytes)?;
    let (id, tail) = rest.split_at_checked(header.id_len)?;
    let id = core::str::from_utf8(id).ok()?;
    let entry = Entry {
        id,
        verdict: header.verdict,
        stored_at: header.stored_at,
    };
    Some((entry, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_ends_the_walk() {
        let mut j = Vec::new();
        append(&mut j, "req-1", Verdict::Approved, 7);
        append(&mut j, "ü", Verdict::Denied, u64::MAX);
        let read: Vec<_> = entries(&j)
            .map(|e| (e.id, e.verdict, e.stored_at))
            .collect();
        assert_eq!(
            read,
            vec![
                ("req-1", Verdict::Approved, 7),
                ("ü", Verdict::Denied, u64::MAX)
            ]
        );
        for cut in 0..j.len() {
            assert!(entries(&j[..cut]).count() <= 2, "no panic at {cut}");
        }
        assert_eq!(entries(&[3, 0, 0]).count(), 0, "PENDING is no verdict");
        let times: Vec<u64> = stored_times(&j).collect();
        assert_eq!(times, [7, u64::MAX], "headers alone, the same walk");
        for cut in 0..j.len() {
            let whole = entries(&j[..cut]).count();
            assert_eq!(stored_times(&j[..cut]).count(), whole, "same stop at {cut}");
        }
    }
}
