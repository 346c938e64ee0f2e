"""The flat operation buffer of ``registry.apply``.

The same format as the guest's ``ops`` module (``guest/src/ops.rs``): each
operation is a tag byte and little-endian fields, so a wait and its verdict
reach the guest as one call with one byte string.

| tag | op | fields |
|---|---|---|
| 1 | register | waiter u64, start-ns u64, timeout-ns u64, id-len u32, id |
| 2 | cancel | waiter u64 |
| 3 | resolve | decision u8 (1 approved, 2 denied), id-len u32, id |
"""

from __future__ import annotations

import struct
from typing import List, Optional

from .clock import U64_MAX

_REGISTER = struct.Struct("<BQQQI")
_CANCEL = struct.Struct("<BQ")
_RESOLVE = struct.Struct("<BBI")


class OpQueue:
    """Queued operations and, per operation, the ticket of a registration
    (``None`` for a cancel or a verdict): where its error goes."""

    __slots__ = ("buf", "tickets")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.tickets: List[Optional[int]] = []

    def register(self, waiter: int, start_ns: int, timeout_ns: int, request_id: bytes) -> None:
        self.buf += _REGISTER.pack(1, waiter, start_ns, min(timeout_ns, U64_MAX), len(request_id))
        self.buf += request_id
        self.tickets.append(waiter)

    def cancel(self, waiter: int) -> None:
        self.buf += _CANCEL.pack(2, waiter)
        self.tickets.append(None)

    def resolve(self, request_id: bytes, decision: int) -> None:
        self.buf += _RESOLVE.pack(3, decision, len(request_id))
        self.buf += request_id
        self.tickets.append(None)

    def __len__(self) -> int:
        return len(self.tickets)

    def take(self) -> "OpQueue":
        """Moves the queued operations out, leaving this queue empty."""
        taken = OpQueue()
        taken.buf, self.buf = self.buf, bytearray()
        taken.tickets, self.tickets = self.tickets, []
        return taken
