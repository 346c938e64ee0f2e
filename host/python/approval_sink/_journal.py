"""The host's copy of the verdicts the guest remembers, so a fresh instance
after a trap remembers them too (S18, SPEC.md §5.6).

The guest writes the entries of the verdicts frames bring; this host writes
those it delivers itself (``resolve`` returns none) with
:func:`journal_entry`, which the suite holds to
``tests/vectors/journal.json``. Each call's journal is kept whole (parsing
it per entry cost more than the rest of an ingest's host side), bounded by
bytes: the newest chunks holding at least ``capacity`` entries of the
longest id, so never fewer than the guest can remember; the fresh guest
keeps the newest within its own bounds."""

from __future__ import annotations

import struct
from collections import deque
from typing import Deque

_HEADER = struct.Struct("<BQI")

#: Bytes of an entry before its request id: the decision, the time it was
#: remembered and the id's length, little-endian.
JOURNAL_HEADER_BYTES = _HEADER.size


def journal_entry(decision: int, stored_at: int, request_id: bytes) -> bytes:
    """One journal entry."""
    return _HEADER.pack(decision, stored_at, len(request_id)) + request_id


class Journal:
    """Journal chunks, oldest first, bounded by bytes."""

    __slots__ = ("_chunks", "_bytes", "_bound")

    def __init__(self, capacity: int, max_id_bytes: int) -> None:
        self._chunks: Deque[bytes] = deque()
        self._bytes = 0
        self._bound = max(1, capacity) * (JOURNAL_HEADER_BYTES + max(1, max_id_bytes))

    def keep(self, journal: bytes) -> None:
        """Keeps one call's journal; drops the oldest chunks past the bound."""
        if not journal:
            return
        self._chunks.append(journal)
        self._bytes += len(journal)
        while self._bytes - len(self._chunks[0]) >= self._bound:
            self._bytes -= len(self._chunks.popleft())

    def bytes(self) -> bytes:
        """Every entry kept, oldest first, for a fresh instance."""
        return b"".join(self._chunks)
