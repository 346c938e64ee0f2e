"""Test helpers: `InvalidationEvent` frames encoded by hand, by the field
numbers of SPEC.md §5.1; `test_vectors.py` holds them to the bytes prost
writes (`tests/vectors/frames.json`)."""

import struct

from approval_sink._wire import varint as _varint


def _field_bytes(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def verdict_event(
    seq: int,
    request_id: str,
    decision: int,
    log_id: int = 0,
    *,
    reviewer: str = "",
    resolved_at_unix_ms: int = 0,
    key_id: str = "",
    signature: bytes = b"",
) -> bytes:
    resolved = _field_bytes(1, request_id.encode()) + _varint(2 << 3) + _varint(decision)
    if reviewer:
        resolved += _field_bytes(3, reviewer.encode())
    if resolved_at_unix_ms:
        # int64: a negative value is its 64-bit two's complement, as prost writes it.
        resolved += _varint(4 << 3) + _varint(resolved_at_unix_ms & ((1 << 64) - 1))
    if key_id:
        resolved += _field_bytes(5, key_id.encode())
    if signature:
        resolved += _field_bytes(6, signature)
    out = b""
    if seq:
        out += _varint(1 << 3) + _varint(seq)
    out += _field_bytes(3, resolved)
    if log_id:
        out += _varint(4 << 3 | 1) + struct.pack("<Q", log_id)
    return out


def stream(*frames: bytes) -> bytes:
    """Length-delimited frames, as the gateway's stream carries them."""
    return b"".join(_varint(len(f)) + f for f in frames)


def invalidation_event(seq: int, agent_id: str, log_id: int = 0) -> bytes:
    """An `InvalidationEvent` with a `PolicyInvalidated` for `agent_id`."""
    agent = agent_id.encode()
    inner = _field_bytes(1, agent) if agent else b""
    out = _varint(1 << 3) + _varint(seq) if seq else b""
    out += _field_bytes(2, inner)
    if log_id:
        out += _varint(4 << 3 | 1) + struct.pack("<Q", log_id)
    return out
