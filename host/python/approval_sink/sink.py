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
import struct
from collections import deque
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Tuple, Union

from ._ops import OpQueue
from ._registry import Applied, Registry, WasmtimeError, default_component_path, guest_defaults, sink_error
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

#: A journal entry's header (SPEC.md §5.6): the decision, the time it was
#: remembered and the id's length, little-endian. The guest writes the
#: entries of the verdicts frames bring; this host writes those it delivers
#: itself (`resolve` returns none), checked against
#: `tests/vectors/journal.json`.
_JOURNAL_HEADER = struct.Struct("<BQI")
JOURNAL_HEADER_BYTES = _JOURNAL_HEADER.size


def journal_entry(decision: int, stored_at: int, request_id: bytes) -> bytes:
    """One journal entry (SPEC.md §5.6)."""
    return _JOURNAL_HEADER.pack(decision, stored_at, len(request_id)) + request_id


# The most stream bytes one `ingest-frames` call takes: lowering costs 32
# bytes of buffers a byte (`_abi`).
_MAX_INGEST_CALL_BYTES = 1 << 20

# A pessimistic cost of one Ed25519 verification in the guest, the share of
# the call budget verification may take, and the smallest signed verdict
# frame: the Rust adapter's figures (`trust.rs`).
_VERIFY_COST = 500e-6
_VERIFY_SHARE_OF_BUDGET = 4
_MIN_SIGNED_FRAME_BYTES = 87


def _signed_chunk_bytes(call_budget: float) -> int:
    verifications = int(call_budget / _VERIFY_SHARE_OF_BUDGET / _VERIFY_COST)
    return max(1, verifications) * _MIN_SIGNED_FRAME_BYTES


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _id_bytes(request_id: str) -> bytes:
    # A Python str may hold lone surrogates, which UTF-8 cannot: passed
    # through as the bytes they would be, the guest refuses the operation
    # with its typed error (not UTF-8) instead of this host raising
    # UnicodeEncodeError.
    return request_id.encode("utf-8", "surrogatepass")


def invalidation_frame(agent_id: str) -> bytes:
    """An ``InvalidationEvent`` with a ``PolicyInvalidated`` (field 2) for
    ``agent_id`` (its field 1), unsequenced: the frame the guest forwards."""
    agent = _id_bytes(agent_id)
    inner = b"\x0a" + _varint(len(agent)) + agent if agent else b""
    return b"\x12" + _varint(len(inner)) + inner


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
        self._next_token = 1
        self._listeners: List[Callable[[str], None]] = []
        self._invalidated: List[str] = []
        self._resume: Tuple[int, int] = (0, 0)
        # What the guest remembers, for a fresh instance after a trap (S18).
        # Each call's journal is kept whole (parsing it per entry cost more
        # than the rest of an ingest's host side), bounded by bytes: the
        # newest chunks holding at least `verdict_cache_capacity` entries of
        # the longest id, so never fewer than the guest can remember; the
        # fresh guest keeps the newest within its own bounds.
        self._journal: Deque[bytes] = deque()
        self._journal_bytes = 0
        self._journal_bound = max(1, self.config.verdict_cache_capacity) * (
            JOURNAL_HEADER_BYTES + max(1, self.config.max_request_id_bytes)
        )
        self._traps = 0
        self._oversized = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._flush_scheduled = False
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[int] = None
        self._registry = self._new_registry()
        self._clock.on_advance(self._on_clock_advanced)

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
        token = self._next_token
        self._next_token += 1
        self._slots[token] = fut
        if detailed:
            # Who decided is one more guest call: only for waits that ask.
            self._detailed[token] = request_id
        start = self._clock.now_ns()
        timeout_ns = seconds_to_ns(timeout)
        self._queue.register(token, start, timeout_ns, rid)
        fut.add_done_callback(partial(self._on_future_done, token))
        self._arm(min(start + min(timeout_ns, seconds_to_ns(self.config.max_timeout)), U64_MAX))
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
        rid = _id_bytes(request_id)
        if len(rid) > self.config.max_request_id_bytes:
            raise SinkError("request-id-too-long", len(rid))
        return rid

    def _sweep_cancelled(self) -> None:
        for token in [t for t, fut in self._slots.items() if fut.cancelled()]:
            self._on_future_done(token, self._slots[token])

    def _on_future_done(self, token: int, fut: "asyncio.Future[Outcome]") -> None:
        self._detailed.pop(token, None)
        if fut.cancelled() and self._slots.pop(token, None) is not None:
            # Queued, like the registration: no guest call of its own.
            self._queue.cancel(token)
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
        self._remember(journal_entry(int(decision), self._clock.now_ns(), rid))
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
        self._listeners.append(listener)

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
        step = _MAX_INGEST_CALL_BYTES
        if self.config.trusted_keys:
            step = min(step, _signed_chunk_bytes(self.config.call_budget))
        report = self._ingest("ingest-frames", data[:step])
        for at in range(step, len(data), step):
            if report.fatal is not None:
                break
            report = report.merge(self._ingest("ingest-frames", data[at : at + step]))
        return report

    def _ingest(self, export: str, data: bytes) -> IngestReport:
        raw, applied = self._call(lambda r: r.ingest(export, data))
        self._apply(applied)
        report = IngestReport(
            events=raw["events"],
            duplicates=raw["duplicates"],
            rejected=raw["rejected"],
            completed=len(applied.done),
            errors=[sink_error(e) for e in raw["errors"]],
            fatal=None if raw["fatal"] is None else sink_error(raw["fatal"]),
            last_seq=raw["last-seq"],
            log_id=raw["log-id"],
        )
        self._resume = (report.log_id, report.last_seq)
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
        """The guest's counters plus this host's (traps, resets, frames
        skipped as oversized before the guest)."""
        self._sweep_cancelled()
        s = self._call(lambda r: r.stats())
        s.traps = s.resets = self._traps
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
        self._registry.trap_next = True

    def resume_point(self) -> Tuple[int, int]:
        """``(log_id, last_seq)``: where a source resumes (S9, S16)."""
        return self._resume

    # -- the guest -------------------------------------------------------

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an ApprovalSink belongs to the event loop it was first used on")
        return loop

    def _new_registry(self) -> Registry:
        return Registry(self._path, self.config, self._clock.now_ns, self._invalidated.append)

    def _call(self, f: Callable[[Registry], Any]) -> Any:
        """One guest call, after the queue; a fault resets the instance."""
        self._flush()
        return self._guarded(f)

    def _guarded(self, f: Callable[[Registry], Any]) -> Any:
        try:
            return f(self._registry)
        except WasmtimeError as e:
            self._reset(str(e))
            raise GuestFault(str(e)) from e
        finally:
            self._dispatch_invalidations()

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
            applied = self._guarded(lambda r: r.apply(self._clock.now_ns(), bytes(queue.buf)))
        except GuestFault:
            if raise_fault:
                raise
            return None, None
        refused = None
        for op, error in applied.errors:
            token = queue.tokens[op] if op < len(queue.tokens) else None
            if token is None:
                refused = error
            else:
                self._settle(token, exception=error)
        self._apply(applied)
        return applied, refused

    def _apply(self, applied: Applied) -> None:
        deciders: Dict[str, Optional[DecidedBy]] = {}
        for token, outcome in applied.done:
            request_id = self._detailed.pop(token, None)
            if request_id is not None and outcome.ending is Ending.DECIDED:
                if request_id not in deciders:
                    deciders[request_id] = self._decided_by(request_id)
                outcome = replace(outcome, decided_by=deciders[request_id])
            self._settle(token, outcome)
        self._remember(applied.remembered)
        self._arm(applied.next_deadline)

    def _decided_by(self, request_id: str) -> Optional[DecidedBy]:
        if not request_id.isascii():
            try:
                request_id.encode()
            except UnicodeEncodeError:
                return None  # no verdict can be remembered for it
        try:
            return self._guarded(lambda r: r.decided_by(request_id))
        except SinkError:
            return None  # the fault reset the instance; the outcome stands

    def _settle(self, token: int, outcome: Optional[Outcome] = None, exception: Optional[BaseException] = None) -> None:
        fut = self._slots.pop(token, None)
        if fut is None or fut.done():
            return
        if exception is not None:
            fut.set_exception(exception)
        else:
            fut.set_result(outcome)

    def _remember(self, journal: bytes) -> None:
        if not journal:
            return
        self._journal.append(journal)
        self._journal_bytes += len(journal)
        while self._journal_bytes - len(self._journal[0]) >= self._journal_bound:
            self._journal_bytes -= len(self._journal.popleft())

    def _reset(self, why: str) -> None:
        """A trap: a fresh instance that remembers the old one's verdicts
        (S18) and resumes where it stood; every outstanding wait ends as
        ``RESET`` (S12), which ``wait_for_approval`` reads as ``PENDING``."""
        self._traps += 1
        log.error("approval-sink guest faulted (%s); resetting its instance", why)
        self._queue = OpQueue()
        self._registry = self._new_registry()
        self._registry.restore_verdicts(b"".join(self._journal))
        self._registry.resume_from(*self._resume)
        slots, self._slots = self._slots, {}
        self._detailed.clear()
        for fut in slots.values():
            if not fut.done():
                fut.set_result(RESET)

    def _dispatch_invalidations(self) -> None:
        # After the call: a listener may call back into the sink.
        while self._invalidated:
            agent = self._invalidated.pop(0)
            for listener in list(self._listeners):
                try:
                    listener(agent)
                except Exception:  # noqa: BLE001 - one listener's bug stays its own
                    log.exception("policy invalidation listener failed for %r", agent)

    # -- time ------------------------------------------------------------

    def _arm(self, deadline: Optional[int]) -> None:
        """Makes sure something expires waits at ``deadline``."""
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        self._timer_at = deadline
        if self._clock.virtual or self._loop is None:
            return  # `advance` drives expiry
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (deadline - self._clock.now_ns()) / 1e9)
        self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._expire()

    def _on_clock_advanced(self) -> None:
        if self._timer_at is not None and self._clock.now_ns() >= self._timer_at:
            self._expire()

    def _expire(self) -> None:
        self._timer_at = None
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
