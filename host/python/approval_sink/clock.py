"""Clocks: the guest reads time only through the host (no WASI), so tests
can run a virtual clock and timeouts fire exactly when it is advanced."""

from __future__ import annotations

import time
from typing import Callable, List

U64_MAX = (1 << 64) - 1


def seconds_to_ns(seconds: float) -> int:
    """Seconds as nanoseconds for the guest (a ``u64``): NaN and negative
    are no time at all, and anything past ``u64`` (``math.inf`` included)
    saturates, so no duration a caller or a config holds raises (S19)."""
    if seconds != seconds or seconds <= 0:
        return 0
    if seconds >= U64_MAX / 1e9:
        return U64_MAX
    return min(int(seconds * 1e9), U64_MAX)


class SystemClock:
    """Monotonic time (``time.monotonic_ns``)."""

    virtual = False

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Real time needs no notification: the sink arms asyncio timers."""


class ManualClock:
    """Time that moves only by :meth:`advance`; for tests."""

    virtual = True

    def __init__(self) -> None:
        self._now = 0
        self._listeners: List[Callable[[], None]] = []

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        """Moves time on; sinks on this clock expire what is due now."""
        self._now += int(seconds * 1e9)
        for listener in list(self._listeners):
            listener()

    def on_advance(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)
