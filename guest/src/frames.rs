//! Protobuf frames of the gateway's stream, into the registry.
//!
//! This module owns two things: [`FrameDecoder`], an incremental splitter of
//! length-delimited frames (prost's `decode_length_delimited` framing: a
//! varint length, then that many bytes) that works across arbitrary chunk
//! boundaries; and [`apply_frame`] / [`ingest`] / [`end_stream`], which
//! decode `InvalidationEvent`s, apply them to a [`Registry`] (S2, S4, S8, S9,
//! S10) and count whatever they reject, in one place.
//!
//! # What bad input does
//!
//! * A frame whose body fails to decode, an event with no payload, a verdict
//!   that is not `APPROVED`/`DENIED` (S8), or a bad request id: the frame is
//!   skipped, counted as malformed and reported; decoding goes on with the
//!   next frame, since the length prefix told us where it starts.
//! * A length prefix above `max-frame-bytes`, or a varint longer than ten
//!   bytes: framing is lost, because nothing in the stream marks where the
//!   next frame starts. The decoder forgets its buffered bytes and reports a
//!   fatal error; events before the bad prefix are already applied. The host
//!   must reopen its source (resuming from `last_seq`, so nothing is lost).

use crate::registry::{Registry, RegistryError, TimeSource};
use crate::trust::AuthFailure;
use crate::verdict::Verdict;
use crate::wire::{self, Payload};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Most per-frame errors one ingest report lists (the guest's, and the
/// host's sum of several); stats count them all.
pub const MAX_REPORTED_ERRORS: usize = 16;

/// Why a frame or a stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A length prefix above the limit (the announced length, saturated).
    /// In a stream this is fatal: it cannot be resynchronised.
    TooLarge(u32),
    /// A varint length prefix longer than ten bytes. Fatal.
    BadPrefix,
    /// The frame's bytes are not an `InvalidationEvent`, or it has no event.
    Malformed(String),
    /// A verdict other than approved/denied (the raw enum value).
    UnknownDecision(i32),
    /// The request id breaks a limit.
    BadRequestId(RegistryError),
    /// The other verdict is already final for the id (S15): ignored, and
    /// counted as a conflict rather than as malformed.
    Conflicting,
    /// Trusted keys are configured and the verdict is not signed by one
    /// (S17): ignored, counted as unauthenticated rather than as malformed.
    Unauthenticated(AuthFailure),
}

/// What one applied frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A verdict, resolving this many waiters (0: cached as an early verdict).
    Resolved(u32),
    /// A policy invalidation, forwarded to the host.
    Invalidated,
    /// A sequenced event already seen (S9); ignored.
    Duplicate,
}

/// Splits a byte stream into length-delimited frames, across chunk boundaries.
///
/// Only the bytes of a frame that straddles a chunk boundary are copied;
/// frames wholly inside a chunk are handed out as borrowed slices.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    partial: Vec<u8>,
}

enum Prefix {
    /// More bytes are needed to read the length.
    Incomplete,
    /// The prefix is `len` bytes long and announces a body of `body` bytes.
    Complete { len: usize, body: usize },
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of an unfinished frame held from earlier chunks.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Forgets any partial frame (after a fatal error, or a new source).
    pub fn reset(&mut self) {
        self.partial.clear();
    }

    /// Feeds one chunk, calling `on_frame` with each complete frame body in
    /// order. A fatal error resets the decoder; frames before it were handed
    /// out already.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        max_frame_bytes: u32,
        mut on_frame: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        let result = self.feed_inner(chunk, max_frame_bytes, &mut on_frame);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn feed_inner(
        &mut self,
        chunk: &[u8],
        max: u32,
        on_frame: &mut impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        let mut input = chunk;
        // First finish the frame left over from earlier chunks, copying only
        // the bytes it still needs.
        while !self.partial.is_empty() {
            match read_prefix(&self.partial, max)? {
                Prefix::Incomplete => {
                    let Some((&byte, rest)) = input.split_first() else {
                        return Ok(());
                    };
                    self.partial.push(byte);
                    input = rest;
                }
                Prefix::Complete { len, body } => {
                    let total = len.saturating_add(body);
                    let want = total.saturating_sub(self.partial.len());
                    let (head, rest) = input.split_at(want.min(input.len()));
                    self.partial.extend_from_slice(head);
                    input = rest;
                    if self.partial.len() < total {
                        return Ok(());
                    }
                    on_frame(self.partial.get(len..total).unwrap_or_default());
                    self.partial.clear();
                }
            }
        }
        // Then every frame wholly inside the chunk, without copying.
        loop {
            if input.is_empty() {
                return Ok(());
            }
            match read_prefix(input, max)? {
                Prefix::Complete { len, body } if input.len() - len >= body => {
                    let (frame, rest) = input[len..].split_at(body);
                    on_frame(frame);
                    input = rest;
                }
                _ => break,
            }
        }
        self.partial.extend_from_slice(input);
        Ok(())
    }
}

/// Reads a varint length prefix at the start of `bytes`.
fn read_prefix(bytes: &[u8], max: u32) -> Result<Prefix, FrameError> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if value > u64::from(max) {
                return Err(FrameError::TooLarge(
                    u32::try_from(value).unwrap_or(u32::MAX),
                ));
            }
            // `value <= max <= u32::MAX`, so this fits a usize on every target we build.
            let body = usize::try_from(value).map_err(|_| FrameError::TooLarge(u32::MAX))?;
            return Ok(Prefix::Complete { len: i + 1, body });
        }
    }
    if bytes.len() >= 10 {
        Err(FrameError::BadPrefix)
    } else {
        Ok(Prefix::Incomplete)
    }
}

/// Decodes one frame body (no length prefix) as an `InvalidationEvent` and
/// applies it; a body over `max-frame-bytes` is rejected unread.
///
/// `on_invalidation` receives the agent id of a `PolicyInvalidated` event
/// (empty: all agents). Every rejected frame is counted once: a conflicting
/// verdict as a conflict (S15) and an unauthenticated one (S17) by the
/// registry, anything else as malformed (S8) here.
pub fn apply_frame<C: TimeSource>(
    registry: &mut Registry<C>,
    frame: &[u8],
    on_invalidation: &mut impl FnMut(&str),
) -> Result<Applied, FrameError> {
    let max = registry.config().max_frame_bytes;
    let result = if frame.len() > max as usize {
        Err(FrameError::TooLarge(
            u32::try_from(frame.len()).unwrap_or(u32::MAX),
        ))
    } else {
        wire::decode(frame)
            .map_err(|err| FrameError::Malformed(err.describe().to_string()))
            .and_then(|event| apply_event(registry, event, on_invalidation))
    };
    // A conflict or an unauthenticated verdict is counted by the registry
    // as such; everything else rejected here is malformed.
    result.inspect_err(|e| {
        if !matches!(e, FrameError::Conflicting | FrameError::Unauthenticated(_)) {
            registry.note_malformed();
        }
    })
}

/// Feeds the next chunk of a length-delimited stream through `decoder`,
/// applying each whole frame ([`apply_frame`]) and handing its result to
/// `on_result`. A fatal framing error is counted as malformed and returned;
/// frames before it are applied.
pub fn ingest<C: TimeSource>(
    registry: &mut Registry<C>,
    decoder: &mut FrameDecoder,
    chunk: &[u8],
    on_invalidation: &mut impl FnMut(&str),
    mut on_result: impl FnMut(Result<Applied, FrameError>),
) -> Result<(), FrameError> {
    let max = registry.config().max_frame_bytes;
    decoder
        .feed(chunk, max, |frame| {
            on_result(apply_frame(registry, frame, on_invalidation));
        })
        .inspect_err(|_| registry.note_malformed())
}

/// Ends a stream: drops the partial frame `decoder` holds, counting it as
/// malformed. Returns the bytes dropped.
pub fn end_stream<C: TimeSource>(registry: &mut Registry<C>, decoder: &mut FrameDecoder) -> usize {
    let dropped = decoder.buffered();
    decoder.reset();
    if dropped > 0 {
        registry.note_malformed();
    }
    dropped
}

/// Applies one decoded event; the caller counts errors.
fn apply_event<C: TimeSource>(
    registry: &mut Registry<C>,
    event: wire::Event<'_>,
    on_invalidation: &mut impl FnMut(&str),
) -> Result<Applied, FrameError> {
    let Some(payload) = event.payload else {
        return Err(FrameError::Malformed("event has no payload".to_string()));
    };
    if registry.window().is_duplicate(event.seq, event.log_id) {
        return Ok(Applied::Duplicate);
    }
    // Only an applied event moves `last_seq`: a rejected frame (even one
    // claiming `seq = u64::MAX`) must never make later events duplicates.
    let applied = match payload {
        Payload::Resolved(resolved) => {
            let verdict = Verdict::from_wire(resolved.decision)
                .ok_or(FrameError::UnknownDecision(resolved.decision))?;
            registry
                .resolve_event(&resolved, verdict)
                .map(Applied::Resolved)
                .map_err(|e| match e {
                    RegistryError::ConflictingVerdict => FrameError::Conflicting,
                    RegistryError::Unauthenticated(why) => FrameError::Unauthenticated(why),
                    other => FrameError::BadRequestId(other),
                })?
        }
        Payload::Invalidated(agent_id) => {
            registry.note_invalidation();
            on_invalidation(agent_id);
            Applied::Invalidated
        }
    };
    registry.window().note_applied(event.seq, event.log_id);
    Ok(applied)
}
