"""Bytes this host builds for the guest: varints, request ids, and the
policy-invalidation frame (SPEC.md §5.1-5.2; the suite holds them to
`tests/vectors/frames.json`)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """``n`` (a non-negative integer) as a protobuf varint."""
    if n < 0:
        raise ValueError(f"a varint is not negative: {n}")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def id_bytes(request_id: str) -> bytes:
    """A request or agent id's UTF-8 bytes. A Python str may hold lone
    surrogates, which UTF-8 cannot: passed through as the bytes they would
    be, the guest refuses the operation with its typed error (not UTF-8)
    instead of this host raising UnicodeEncodeError."""
    return request_id.encode("utf-8", "surrogatepass")


def invalidation_frame(agent_id: str) -> bytes:
    """An ``InvalidationEvent`` with a ``PolicyInvalidated`` (field 2) for
    ``agent_id`` (its field 1), unsequenced: the frame the guest forwards."""
    agent = id_bytes(agent_id)
    inner = b"\x0a" + varint(len(agent)) + agent if agent else b""
    return b"\x12" + varint(len(inner)) + inner
