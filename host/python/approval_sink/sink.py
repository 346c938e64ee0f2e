"""``ApprovalSink``: the approval-waiter registry for asyncio agent hosts.

One sink owns one instance of the ``approval-registry`` component. A wait
is an ``asyncio.Future`` in this host's table of slots; the guest holds the
waiter. As in the Rust adapter (SPEC.md §5.5), ``wait`` does not call
the guest: it queues the registration in one flat byte buffer, which goes
to the guest before any other guest call, and from the event loop soon
after (``call_soon``); ``deliver`` appends its verdict and sends the lot, so
a wait and its verdict cost one guest call (a call through wasmtime-py's
ctypes layer costs far more than the guest's work). S1 holds because
nothing reaches the guest ahead of the queue.

The sink belongs to one event loop and is not thread-safe (asyncio's own
rule); the Rust adapter is the one to share across threads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, Union

from ._guest import MAX_INGEST_CALL_BYTES, Guest, signed_chunk_bytes
from ._journal import journal_entry
from ._ops import OpQueue
from ._registry import Applied, Registry, default_component_path, guest_defaults
from ._timer import Timer
from ._wire import id_bytes, invalidation_frame
from .clock import U64_MAX, SystemClock, seconds_to_ns
from .types import (
    RESET,
    DecidedBy,
    Decision,
    Ending,
    GuestFault,
    IngestReport,
    Outcome,
    SinkConfig,
    SinkError,
    Stats,
)

log = logging.getLogger("approval_sink")


def default_config(component: Union[str, Path, None] = None) -> SinkConfig:
    """Every default of a sink on ``component`` (default: the packaged
    one): the guest's limits as its ``default-config`` export says, and
    this host's own."""
    path = Path(component) if component else default_component_path()
    return SinkConfig().with_guest_defaults(guest_defaults(path))


class ApprovalSink:
    """The registry of waits for human approvals, in a sandboxed component.

    ``clock``: a :class:`~approval_sink.clock.SystemClock` (default) or a
    :class:`~approval_sink.clock.ManualClock` for tests. ``component``: the
    path of ``approval-registry.wasm`` (default: the one in this package, or
    ``$APPROVAL_SINK_WASM``).
    """

    def __init__(
        self,
        config: Optional[SinkConfig] = None,
        *,
        clock: Any = None,
        component: Union[str, Path, None] = None,
    ) -> None:
        self._path = Path(component) if component else default_component_path()
        self.config = (config or SinkConfig()).with_guest_defaults(guest_defaults(self._path))
        self.config.check()
        self._clock = clock or SystemClock()
        self._queue = OpQueue()
        self._slots: Dict[int, "asyncio.Future[Outcome]"] = {}
        self._detailed: Dict[int, str] = {}
        self._lookup: Optional[Callable[[str, "asyncio.Future[Outcome]"], None]] = None
        self._source: Optional[object] = None
        self._next_ticket = 1
        self._oversized = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._flush_scheduled = False
        self._timer = Timer(self._clock, self._expire)
        self._guest = Guest(self._path, self.config, self._clock, self._on_reset)

    # -- waits -----------------------------------------------------------

    def wait(self, request_id: str, timeout: float) -> "asyncio.Future[Outcome]":
        """Registers a wait at once (S1) and returns a future of how it
        ended. Timeout in seconds; a timeout is ``Ending.TIMED_OUT``, never a
        denial. A decided outcome says who decided (``decided_by``: the
        reviewer, the signing key's id, when; S17) while the sink remembers
        the verdict. Cancelling the future cancels the waiter (S7). Refusals
        (an empty or over-long id, too many waiters) end it with a
        :class:`SinkError`. Needs a running event loop."""
        return self._register(request_id, timeout, detailed=True)

    def wait_for_approval(self, request_id: str, timeout: float) -> Awaitable[Decision]:
        """The original API: registers at once and returns an awaitable of
        the reviewer's decision, or ``Decision.PENDING`` when the timeout
        passes, the wait is refused, or the guest is reset (never
        ``DENIED`` without a reviewer)."""
        return _decision(self._register(request_id, timeout, detailed=False))

    def _register(self, request_id: str, timeout: float, detailed: bool) -> "asyncio.Future[Outcome]":
        loop = self._loop_now()
        fut: "asyncio.Future[Outcome]" = loop.create_future()
        try:
            rid = self._checked_id(request_id)
        except SinkError as refused:
            fut.set_exception(refused)
            return fut
        ticket = self._next_ticket
        self._next_ticket += 1
        self._slots[ticket] = fut
        if detailed:
            # Who decided is one more guest call: only for waits that ask.
            self._detailed[ticket] = request_id
        start = self._clock.now_ns()
        timeout_ns = seconds_to_ns(timeout)
        self._queue.register(ticket, start, timeout_ns, rid)
        fut.add_done_callback(partial(self._on_future_done, ticket))
        self._timer.arm(min(start + min(timeout_ns, seconds_to_ns(self.config.max_timeout)), U64_MAX))
        self._request_flush()
        if self._lookup is not None:
            self._lookup(request_id, fut)
        return fut

    def attach_source(
        self,
        source: object,
        lookup: Optional[Callable[[str, "asyncio.Future[Outcome]"], None]] = None,
    ) -> None:
        """Gives ``source`` this sink's event stream: one source per sink,
        as in the Rust adapter (one stream decoder, one resume point); a
        second is refused with :class:`SinkError` (``invalid-config``).
        ``lookup(request_id, wait)``, for durable waits, is called for each
        new wait to find a verdict the source's log stored before the wait
        began (:class:`approval_sink.nats.NatsSource` has one). The
        sources' ``pump`` functions attach and detach."""
        if self._source is not None and self._source is not source:
            raise SinkError("invalid-config", "this sink already has an event source (one per sink)")
        self._source = source
        self._lookup = lookup

    def detach_source(self, source: object) -> None:
        """Ends ``source``'s hold on the event stream (no-op for another)."""
        if self._source is source:
            self._source = None
            self._lookup = None

    def _checked_id(self, request_id: str) -> bytes:
        """The id's bytes for the queue; an id over the limit is refused
        before it is copied anywhere, with the guest's own error."""
        rid = id_bytes(request_id)
        if len(rid) > self.config.max_request_id_bytes:
            raise SinkError("request-id-too-long", len(rid))
        return rid

    def _sweep_cancelled(self) -> None:
        for ticket in [t for t, fut in self._slots.items() if fut.cancelled()]:
            self._on_future_done(ticket, self._slots[ticket])

    def _on_future_done(self, ticket: int, fut: "asyncio.Future[Outcome]") -> None:
        self._detailed.pop(ticket, None)
        if fut.cancelled() and self._slots.pop(ticket, None) is not None:
            # Queued, like the registration: no guest call of its own.
            self._queue.cancel(ticket)
            self._request_flush()

    # -- verdicts and events ---------------------------------------------

    def deliver(self, request_id: str, decision: Decision) -> int:
        """Delivers a verdict to every waiter on ``request_id``, or remembers
        it for a later wait (S4, S15). Returns the waiters it woke. Raises
        :class:`SinkError` for a non-verdict decision, a bad id, or the other
        verdict already final for this id (``conflicting-verdict``)."""
        if decision not in (Decision.APPROVED, Decision.DENIED):
            # Any other value, a wire number this enum lacks included, is
            # not a verdict (S8): typed, as the guest would say it.
            raise SinkError("unknown-decision", int(decision))
        decision = Decision(decision)
        rid = self._checked_id(request_id)
        self._queue.resolve(rid, int(decision))
        applied, refused = self._flush(raise_fault=True)
        if refused is not None:
            raise refused
        # `resolve` returns no journal (S18): this host writes the entry (a
        # repeat is harmless: a fresh instance skips it).
        self._guest.journal.keep(journal_entry(int(decision), self._clock.now_ns(), rid))
        return applied.woken if applied else 0

    def on_approval_resolved(self, request_id: str, decision: Decision) -> None:
        """The gateway's event interface: :meth:`deliver`, refusals logged."""
        try:
            self.deliver(request_id, decision)
        except SinkError as e:
            log.warning("verdict for %r rejected: %s", request_id, e)

    def on_policy_invalidated(self, agent_id: str) -> None:
        """An agent's policy changed (empty: every agent); listeners hear it."""
        try:
            self.push_frame(invalidation_frame(agent_id))
        except SinkError as e:
            log.warning("policy invalidation rejected: %s", e)

    def add_invalidation_listener(self, listener: Callable[[str], None]) -> None:
        """Calls ``listener(agent_id)`` for each policy invalidation (S10)."""
        self._guest.listeners.append(listener)

    def push_frame(self, frame: bytes) -> None:
        """Applies one encoded ``InvalidationEvent`` (no length prefix);
        raises the first error it met. A frame over ``max_frame_bytes`` is
        refused here, before it is copied into the guest, with the guest's
        own error (``frame-too-large``), and counted in
        ``stats().oversized_frames``."""
        frame = bytes(frame)
        if len(frame) > self.config.max_frame_bytes:
            self.count_oversized()
            raise SinkError("frame-too-large", len(frame))
        report = self._ingest("apply-frame", frame)
        if report.errors:
            raise report.errors[0]

    def ingest_bytes(self, data: bytes) -> IngestReport:
        """Feeds the next chunk of a length-delimited frame stream. With
        trusted keys, a long chunk goes to the guest in pieces small enough
        that verifying every signature in one stays well inside the call
        budget (S13, S17), as the Rust adapter does. While a source runs
        it owns this stream (it sends whole frames only); feed a sink
        either from a source or by hand."""
        data = bytes(data)
        step = MAX_INGEST_CALL_BYTES
        if self.config.trusted_keys:
            step = min(step, signed_chunk_bytes(self.config.call_budget))
        report = self._ingest("ingest-frames", data[:step])
        for at in range(step, len(data), step):
            if report.fatal is not None:
                break
            report = report.merge(self._ingest("ingest-frames", data[at : at + step]))
        return report

    def _ingest(self, export: str, data: bytes) -> IngestReport:
        report, applied = self._call(lambda r: r.ingest(export, data))
        self._apply(applied)
        self._guest.stream_moved(report.log_id, report.last_seq)
        return report

    # -- state -----------------------------------------------------------

    def waiter_count(self) -> int:
        """Waits pending now; exact with registrations still queued and
        with futures cancelled a moment ago (asyncio runs their callbacks
        on the loop's next turn)."""
        self._sweep_cancelled()
        self._flush()
        return len(self._slots)

    def stats(self) -> Stats:
        """The guest's counters plus this host's (resets, frames
        skipped as oversized before the guest)."""
        self._sweep_cancelled()
        s = self._call(lambda r: r.stats())
        s.resets = self._guest.resets
        s.oversized_frames = self._oversized
        return s

    def count_oversized(self, frames: int = 1) -> None:
        """Counts frames skipped before the guest for being over
        ``max_frame_bytes`` (the sources call it for each they skip)."""
        self._oversized += frames

    def decided_by(self, request_id: str) -> Optional[DecidedBy]:
        """Who decided ``request_id``, while the sink remembers its verdict
        (S15's bound); ``None`` if it has none."""
        self._flush()
        return self._decided_by(request_id)

    def inject_trap(self) -> None:
        """Makes the next guest call trap, as a guest bug would: for tests
        of trap recovery (S12)."""
        self._guest.inject_trap()

    def resume_point(self) -> Tuple[int, int]:
        """``(log_id, last_seq)``: where a source resumes (S9, S16)."""
        return self._guest.resume

    # -- the guest -------------------------------------------------------

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._timer.bind(loop)
        elif self._loop is not loop:
            raise RuntimeError("an ApprovalSink belongs to the event loop it was first used on")
        return loop

    def _call(self, f: Callable[[Registry], Any]) -> Any:
        """One guest call, after the queue; a fault resets the instance."""
        self._flush()
        return self._guest.call(f)

    def _request_flush(self) -> None:
        if not self._flush_scheduled and self._queue and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        try:
            self._flush()
        except SinkError:
            pass  # each queued wait got its own outcome

    def _flush(self, raise_fault: bool = False) -> Tuple[Optional[Applied], Optional[SinkError]]:
        """Sends the queue; returns what it did and a queued verdict's error.
        A fault has reset every queued wait; it is raised only for a caller
        whose own operation was in the queue (``deliver``)."""
        if not self._queue:
            return None, None
        queue = self._queue.take()
        try:
            applied = self._guest.call(lambda r: r.apply(self._clock.now_ns(), bytes(queue.buf)))
        except GuestFault:
            if raise_fault:
                raise
            return None, None
        refused = None
        for op, error in applied.errors:
            ticket = queue.tickets[op] if op < len(queue.tickets) else None
            if ticket is None:
                refused = error
            else:
                self._settle(ticket, exception=error)
        self._apply(applied)
        return applied, refused

    def _apply(self, applied: Applied) -> None:
        deciders: Dict[str, Optional[DecidedBy]] = {}
        for ticket, outcome in applied.done:
            request_id = self._detailed.pop(ticket, None)
            if request_id is not None and outcome.ending is Ending.DECIDED:
                if request_id not in deciders:
                    deciders[request_id] = self._decided_by(request_id)
                outcome = replace(outcome, decided_by=deciders[request_id])
            self._settle(ticket, outcome)
        self._guest.journal.keep(applied.journal)
        self._timer.arm(applied.next_deadline)

    def _decided_by(self, request_id: str) -> Optional[DecidedBy]:
        if not request_id.isascii():
            try:
                request_id.encode()
            except UnicodeEncodeError:
                return None  # no verdict can be remembered for it
        try:
            return self._guest.call(lambda r: r.decided_by(request_id))
        except SinkError:
            return None  # the fault reset the instance; the outcome stands

    def _settle(self, ticket: int, outcome: Optional[Outcome] = None, exception: Optional[BaseException] = None) -> None:
        fut = self._slots.pop(ticket, None)
        if fut is None or fut.done():
            return
        if exception is not None:
            fut.set_exception(exception)
        else:
            fut.set_result(outcome)

    def _on_reset(self) -> None:
        """The guest was replaced after a trap (S12): queued operations were
        for the old instance, and every outstanding wait ends as ``RESET``,
        which ``wait_for_approval`` reads as ``PENDING``."""
        self._queue = OpQueue()
        slots, self._slots = self._slots, {}
        self._detailed.clear()
        for fut in slots.values():
            if not fut.done():
                fut.set_result(RESET)

    # -- time ------------------------------------------------------------

    def _expire(self) -> None:
        try:
            applied = self._call(lambda r: r.expire())
        except SinkError:
            return
        self._apply(applied)


async def _decision(fut: "asyncio.Future[Outcome]") -> Decision:
    try:
        return (await fut).verdict
    except SinkError as e:
        log.warning("wait failed (%s); falling back to PENDING", e)
        return Decision.PENDING
