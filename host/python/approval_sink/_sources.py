"""What the sources share: frames that arrive in one turn of the event loop
reach the guest in one ``ingest-frames`` call (a guest call from Python
costs ~25 us before any work; a frame's own work is a few microseconds),
a frame over the sink's limit never reaches the guest, attempts are spaced
by exponential backoff with jitter, and a pump holds its sink's event
stream from the call that starts it."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable, Coroutine, List, Optional

from ._wire import varint
from .sink import ApprovalSink
from .types import SinkError

log = logging.getLogger("approval_sink.sources")


class FrameBatch:
    """Whole frame bodies for one sink, sent once per loop turn."""

    def __init__(self, sink: ApprovalSink) -> None:
        self._sink = sink
        self._frames: List[bytes] = []

    def fits(self, size: int) -> bool:
        """Whether a frame of ``size`` bytes is within the sink's frame
        limit. One over it is counted (``stats().oversized_frames``),
        logged and never copied into the guest: the guest would refuse it
        anyway (in the stream it would be fatal, and come back on every
        reopen), and lowering a 16 MiB message from a hostile peer would
        cost ~0.5 GiB of buffers."""
        if size <= self._sink.config.max_frame_bytes:
            return True
        self._sink.count_oversized()
        log.warning("skipping a %d-byte event over the sink's frame limit", size)
        return False

    def add(self, body: bytes) -> None:
        """Queues one frame body (no length prefix); the caller has checked
        it against the sink's frame limit (over it, the stream decoder
        would lose its framing)."""
        if not self._frames:
            asyncio.get_running_loop().call_soon(self.flush)
        self._frames.append(varint(len(body)) + body)

    def flush(self) -> None:
        """Sends what is queued; refusals are counted by the guest and
        logged here, and the stream goes on."""
        if not self._frames:
            return
        data, self._frames = b"".join(self._frames), []
        try:
            report = self._sink.ingest_bytes(data)
        except SinkError as e:
            log.warning("ingest failed: %s", e)
            return
        for error in report.errors:
            log.warning("event rejected: %s", error)


#: Longest pause between a source's attempts, in seconds, whatever it was
#: configured with (the Rust host's ``MAX_BACKOFF``): an infinite or huge
#: backoff would otherwise stop the source for good after one failure.
#: This and the other source defaults are pinned in
#: ``tests/vectors/host-defaults.json``.
MAX_BACKOFF = 3600.0

#: Shortest pause between a source's attempts, in seconds.
SHORTEST_BACKOFF = 0.001

#: Shortest idle timeout a source accepts, in seconds.
SHORTEST_IDLE_TIMEOUT = 0.1

#: A source's first pause and longest pause by default, in seconds.
INITIAL_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 5.0

#: How long a source's connection may stay unanswered by default, seconds.
IDLE_TIMEOUT = 30.0


def _pause(seconds: float, floor: float) -> float:
    """``seconds`` clamped to ``floor ..= MAX_BACKOFF``; NaN is the floor."""
    if not seconds >= floor:  # also NaN
        return floor
    return min(seconds, MAX_BACKOFF)


class Backoff:
    """The pause before a source's next attempt: from ``initial`` seconds,
    doubling up to ``maximum``, each drawn from its upper half (jitter, so
    many agent hosts do not reconnect in step). Both are clamped to
    1 ms ..= :data:`MAX_BACKOFF` (NaN: the floor), as the Rust pump does."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = _pause(initial, SHORTEST_BACKOFF)
        self._maximum = _pause(maximum, self._initial)
        self._next = self._initial

    def reset(self) -> None:
        """The source made progress: the next pause is the first again."""
        self._next = self._initial

    async def sleep(self) -> None:
        """Pauses, and doubles the next pause."""
        await asyncio.sleep(self._next * random.uniform(0.5, 1.0))
        self._next = min(self._next * 2, self._maximum)


def start_pump(
    sink: ApprovalSink,
    source: object,
    run: "Coroutine[Any, Any, None]",
    lookup: Optional[Callable[[str, Any], None]] = None,
) -> "asyncio.Task[None]":
    """Runs ``run`` (``source.run(sink)``) as a task holding ``sink``'s
    event stream from now on: a second source is refused at once, with
    :class:`SinkError`; waits made from now on get the source's ``lookup``
    (before the task first runs too); the hold ends with the task, even
    one cancelled before it first ran."""
    try:
        sink.attach_source(source, lookup)
    except SinkError:
        run.close()
        raise
    task = asyncio.ensure_future(run)
    task.add_done_callback(lambda _: sink.detach_source(source))
    return task
