//! How an entry holds its request id ([`Key`]) and how a looked-up id is
//! prepared to compare with it ([`Probe`]): inline when short, so a match
//! is a length and three word compares on the entry's own cache line.

use alloc::boxed::Box;

/// Longest id kept inside its entry; longer ones are boxed.
pub(super) const INLINE_ID: usize = 23;

/// A request id, kept inside its entry when it is short (most are), so
/// comparing it reads the entry's own cache line and a new id allocates
/// nothing (an interned, shared string costs an allocation per new id
/// and a `free` per eviction: BENCHMARKS.md Run N).
pub(super) enum Key {
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
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => {
                bytes.get(..usize::from(len.get() - 1)).unwrap_or_default()
            }
            Key::Boxed(id) => id.as_bytes(),
        }
    }

    /// Whether this is the id `probe` looks for.
    pub(super) fn matches(&self, probe: &Probe<'_>) -> bool {
        match (self, probe) {
            (Key::Inline { len, bytes }, Probe::Short { len: l, bytes: b }) => {
                len == l && words(bytes) == words(b)
            }
            (Key::Boxed(id), Probe::Long(wanted)) => id.as_bytes() == wanted.as_bytes(),
            _ => false,
        }
    }

    /// The id (made from a `&str`, so always UTF-8).
    pub(super) fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

/// An id being looked up, prepared once per lookup: a short one padded as
/// an inline [`Key`] is, so comparing it with an entry's key is a length
/// and three word compares. (A slice compare is a call to `memcmp`, a byte
/// loop in wasm: ~250 instructions per resolving frame, BENCHMARKS.md Run
/// N.)
pub(super) enum Probe<'a> {
    /// At most [`INLINE_ID`] bytes, zero-padded.
    Short {
        len: core::num::NonZeroU8,
        bytes: [u8; INLINE_ID],
    },
    /// A longer id.
    Long(&'a str),
}

impl<'a> Probe<'a> {
    pub(super) fn new(id: &'a str) -> Self {
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
    pub(super) fn key(&self) -> Key {
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

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
