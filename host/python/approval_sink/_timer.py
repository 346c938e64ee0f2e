"""The one asyncio timer of a sink: armed at the guest's earliest pending
deadline, it calls ``expire`` when that passes. With a virtual clock
(:class:`~approval_sink.clock.ManualClock`), ``advance`` drives expiry
instead.

Invariant: the timer is never armed later than the earliest deadline the
guest reported or a queued wait will have; a later deadline leaves it as
it is."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional


class Timer:
    """Fires ``expire`` once the sink's clock reaches the armed deadline."""

    __slots__ = ("_clock", "_expire", "_loop", "_handle", "_at")

    def __init__(self, clock: Any, expire: Callable[[], None]) -> None:
        self._clock = clock
        self._expire = expire
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._handle: Optional[asyncio.TimerHandle] = None
        self._at: Optional[int] = None
        clock.on_advance(self._on_clock_advanced)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the sink runs on (real clocks arm on it)."""
        self._loop = loop

    def arm(self, deadline: Optional[int]) -> None:
        """Makes sure something expires waits at ``deadline``."""
        if deadline is None or (self._at is not None and self._at <= deadline):
            return
        self._at = deadline
        if self._clock.virtual or self._loop is None:
            return  # `advance` drives expiry
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, (deadline - self._clock.now_ns()) / 1e9)
        self._handle = self._loop.call_at(self._loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._at = None
        self._expire()

    def _on_clock_advanced(self) -> None:
        if self._at is not None and self._clock.now_ns() >= self._at:
            self._at = None
            self._expire()
