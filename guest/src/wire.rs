//! A borrowed decode of the one message the guest reads,
//! `InvalidationEvent`: its strings and bytes are slices of the frame, so
//! applying a verdict allocates nothing to read it (prost's owned decode
//! allocated every id, reviewer, key id and signature, then dropped them).
//!
//! # Same answers as prost, byte for byte
//!
//! The frame is the only untrusted input, so this decoder accepts exactly
//! what `prost::Message::decode` accepts and reads the same values (a
//! differential property test, `tests/tests/bytes_fuzz.rs`, holds it to
//! that):
//!
//! * varints of at most ten bytes, the tenth below 2; keys within `u32`, field
//!   number 0 refused; wire types 6 and 7 refused;
//! * a known field with another wire type is an error; unknown fields are
//!   skipped (groups too, nested at most 100 deep, prost's recursion
//!   limit); a length past the end is an error;
//! * a field that appears twice: the last value wins; the `event` oneof
//!   merges a second occurrence of the same variant into the first (fields
//!   present in the second win) and replaces the other variant;
//! * strings must be UTF-8; integers are truncated as prost does
//!   (`int32`/`int64` from the varint's low bits).

/// Why a frame is not an `InvalidationEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// A varint longer than ten bytes, or too large for 64 bits.
    Varint,
    /// The frame ends inside a field.
    Truncated,
    /// A key over `u32`, field number 0, or wire type 6 or 7.
    Key,
    /// A known field with the wrong wire type.
    WireType,
    /// An end-group without its start, or groups nested over the limit.
    Group,
    /// A string field that is not UTF-8.
    Utf8,
}

impl WireError {
    /// A short description, for `malformed-frame`.
    pub fn describe(self) -> &'static str {
        match self {
            WireError::Varint => "invalid varint",
            WireError::Truncated => "buffer underflow",
            WireError::Key => "invalid key",
            WireError::WireType => "invalid wire type",
            WireError::Group => "invalid group",
            WireError::Utf8 => "invalid string value: data is not UTF-8 encoded",
        }
    }
}

/// An `ApprovalResolved`, borrowed from its frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// Field 1.
    pub request_id: &'a str,
    /// Field 2, the raw enum value.
    pub decision: i32,
    /// Field 3.
    pub reviewer: &'a str,
    /// Field 4.
    pub resolved_at_unix_ms: i64,
    /// Field 5.
    pub key_id: &'a str,
    /// Field 6.
    pub signature: &'a [u8],
}

impl<'a> From<&'a approval_proto::ApprovalResolved> for Resolved<'a> {
    /// The same fields of an owned message (the gateway's `Resolve`).
    fn from(r: &'a approval_proto::ApprovalResolved) -> Self {
        Resolved {
            request_id: &r.request_id,
            decision: r.decision,
            reviewer: &r.reviewer,
            resolved_at_unix_ms: r.resolved_at_unix_ms,
            key_id: &r.key_id,
            signature: &r.signature,
        }
    }
}

/// The `event` oneof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `PolicyInvalidated` (field 2): its `agent_id`.
    Invalidated(&'a str),
    /// `ApprovalResolved` (field 3).
    Resolved(Resolved<'a>),
}

/// An `InvalidationEvent`, borrowed from its frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Event<'a> {
    /// Field 1.
    pub seq: u64,
    /// The oneof (fields 2 and 3), if present.
    pub payload: Option<Payload<'a>>,
    /// Field 4.
    pub log_id: u64,
}

/// prost's default recursion limit.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A cursor over the frame's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte >= 2 {
                    return Err(WireError::Varint);
                }
                self.bytes = self.bytes.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        Err(WireError::Varint)
    }

    fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError::Key)?;
        let wire = (key & 7) as u8;
        if wire > FIXED32 || key >> 3 == 0 {
            return Err(WireError::Key);
        }
        Ok((key >> 3, wire))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        if n > self.bytes.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn len_delimited(&mut self, wire: u8) -> Result<&'a [u8], WireError> {
        if wire != LEN {
            return Err(WireError::WireType);
        }
        let n = self.varint()?;
        self.take(n)
    }

    fn string(&mut self, wire: u8) -> Result<&'a str, WireError> {
        core::str::from_utf8(self.len_delimited(wire)?).map_err(|_| WireError::Utf8)
    }

    fn scalar(&mut self, wire: u8) -> Result<u64, WireError> {
        if wire != VARINT {
            return Err(WireError::WireType);
        }
        self.varint()
    }

    /// Skips an unknown field (prost's `skip_field`); `depth` is what is
    /// left of the recursion limit.
    fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), WireError> {
        if depth == 0 {
            return Err(WireError::Group);
        }
        let len = match wire {
            VARINT => self.varint().map(|_| 0)?,
            FIXED32 => 4,
            FIXED64 => 8,
            LEN => self.varint()?,
            START_GROUP => loop {
                let (inner, inner_wire) = self.key()?;
                if inner_wire == END_GROUP {
                    if inner != tag {
                        return Err(WireError::Group);
                    }
                    break 0;
                }
                self.skip(inner, inner_wire, depth - 1)?;
            },
            _ => return Err(WireError::Group),
        };
        self.take(len).map(drop)
    }

    fn done(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Decodes one frame body as an `InvalidationEvent`.
pub fn decode(frame: &[u8]) -> Result<Event<'_>, WireError> {
    let mut r = Reader { bytes: frame };
    let mut event = Event::default();
    let depth = RECURSION_LIMIT;
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => event.seq = r.scalar(wire)?,
            2 => {
                let body = r.len_delimited(wire)?;
                let agent = match event.payload {
                    Some(Payload::Invalidated(agent)) => agent,
                    _ => "",
                };
                event.payload = Some(Payload::Invalidated(invalidated(body, agent, depth - 1)?));
            }
            3 => {
                let body = r.len_delimited(wire)?;
                let base = match event.payload {
                    Some(Payload::Resolved(resolved)) => resolved,
                    _ => Resolved::default(),
                };
                event.payload = Some(Payload::Resolved(resolved(body, base, depth - 1)?));
            }
            4 => {
                if wire != FIXED64 {
                    return Err(WireError::WireType);
                }
                let bytes = r.take(8)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(bytes);
                event.log_id = u64::from_le_bytes(le);
            }
            _ => r.skip(tag, wire, depth)?,
        }
    }
    Ok(event)
}

/// Walks the fields of a nested message's body: `known` reads a field it
/// knows and returns `true`, or returns `false` and the field is skipped.
/// `depth` is what is left of the recursion limit.
fn fields<'a>(
    body: &'a [u8],
    depth: u32,
    mut known: impl FnMut(&mut Reader<'a>, u32, u8) -> Result<bool, WireError>,
) -> Result<(), WireError> {
    if depth == 0 {
        return Err(WireError::Group);
    }
    let mut r = Reader { bytes: body };
    while !r.done() {
        let (tag, wire) = r.key()?;
        if !known(&mut r, tag, wire)? {
            r.skip(tag, wire, depth)?;
        }
    }
    Ok(())
}

/// Merges a `PolicyInvalidated` body into `agent_id`.
fn invalidated<'a>(
    body: &'a [u8],
    mut agent_id: &'a str,
    depth: u32,
) -> Result<&'a str, WireError> {
    fields(body, depth, |r, tag, wire| {
        if tag == 1 {
            agent_id = r.string(wire)?;
        }
        Ok(tag == 1)
    })?;
    Ok(agent_id)
}

/// Merges an `ApprovalResolved` body into `v`.
fn resolved<'a>(
    body: &'a [u8],
    mut v: Resolved<'a>,
    depth: u32,
) -> Result<Resolved<'a>, WireError> {
    fields(body, depth, |r, tag, wire| {
        match tag {
            1 => v.request_id = r.string(wire)?,
            // prost reads int32/int64 (and the enum) from the varint's low bits.
            2 => v.decision = r.scalar(wire)? as i32,
            3 => v.reviewer = r.string(wire)?,
            4 => v.resolved_at_unix_ms = r.scalar(wire)? as i64,
            5 => v.key_id = r.string(wire)?,
            6 => v.signature = r.len_delimited(wire)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approval_proto::{ApprovalResolved, Event as WireEvent, InvalidationEvent};
    use prost::Message;

    #[test]
    fn reads_what_prost_writes() {
        let event = InvalidationEvent {
            seq: 7,
            event: Some(WireEvent::ApprovalResolved(ApprovalResolved {
                request_id: "req-1".into(),
                decision: 2,
                reviewer: "alice".into(),
                resolved_at_unix_ms: -5,
                key_id: "k".into(),
                signature: alloc::vec![1, 2, 3],
            })),
            log_id: u64::MAX,
        };
        let bytes = event.encode_to_vec();
        let got = decode(&bytes).expect("decodes");
        assert_eq!((got.seq, got.log_id), (7, u64::MAX));
        let Some(Payload::Resolved(r)) = got.payload else {
            panic!("a verdict: {got:?}");
        };
        assert_eq!(
            (
                r.request_id,
                r.decision,
                r.reviewer,
                r.resolved_at_unix_ms,
                r.key_id,
                r.signature
            ),
            ("req-1", 2, "alice", -5, "k", &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn nested_groups_stop_where_prost_stops() {
        // Unknown field 5 as a group, nested n deep, at the top level and
        // inside a verdict.
        for n in [1usize, 98, 99, 100, 101] {
            let mut group = alloc::vec![0x2bu8; n];
            group.extend(core::iter::repeat_n(0x2cu8, n));
            let mut inner = alloc::vec![0x0a, 0x01, b'x'];
            inner.extend_from_slice(&group);
            let mut nested = alloc::vec![0x1a];
            prost::encoding::encode_varint(inner.len() as u64, &mut nested);
            nested.extend_from_slice(&inner);
            for bytes in [&group, &nested] {
                assert_eq!(
                    decode(bytes).is_ok(),
                    InvalidationEvent::decode(&bytes[..]).is_ok(),
                    "depth {n}"
                );
            }
        }
    }

    #[test]
    fn refuses_what_prost_refuses() {
        // Field 0, a truncated length, a ten-byte varint ending in 2, an
        // unmatched end-group, seq as a length-delimited field.
        for bad in [
            &[0x00, 0x01][..],
            &[0x1a, 0x05, 0x0a],
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            &[0x2c],
            &[0x0a, 0x00],
        ] {
            assert!(decode(bad).is_err(), "{bad:x?}");
            assert!(
                InvalidationEvent::decode(bad).is_err(),
                "prost too: {bad:x?}"
            );
        }
    }
}
