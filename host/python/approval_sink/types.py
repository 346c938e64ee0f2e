"""The public types: decisions, outcomes, limits, counters and errors.

They mirror the Rust adapter's (``approval_host``): a timeout is never a
denial (``Decision.PENDING`` means "no human answered, apply the local
fallback"), and every refusal is a typed exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Tuple

if TYPE_CHECKING:
    from .trust import TrustedKey


U32_MAX = (1 << 32) - 1


class Decision(enum.IntEnum):
    """A reviewer's decision, as the wire enum numbers it."""

    UNSPECIFIED = 0
    APPROVED = 1
    DENIED = 2
    PENDING = 3


class Ending(enum.Enum):
    """How a wait ended."""

    DECIDED = "decided"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"
    RESET = "reset"


@dataclass(frozen=True)
class DecidedBy:
    """Who decided a verdict, as its event said (S17)."""

    decision: Decision
    reviewer: Optional[str] = None
    """The reviewer the gateway named, if any."""
    key_id: Optional[str] = None
    """The trusted key that signed the verdict; ``None`` when unsigned."""
    resolved_at_unix_ms: Optional[int] = None
    """When the reviewer decided (Unix ms), if the event said."""


@dataclass(frozen=True)
class Outcome:
    """How a wait ended and, when a reviewer decided, what they decided.

    ``decided_by`` is filled for a decided :meth:`ApprovalSink.wait` while
    the sink remembers the verdict (S15's bound); it takes no part in
    equality, so ``outcome == APPROVED`` reads as it says."""

    ending: Ending
    decision: Decision = Decision.PENDING
    decided_by: Optional[DecidedBy] = field(default=None, compare=False)

    @property
    def verdict(self) -> Decision:
        """The decision, or ``PENDING`` for every ending without one."""
        return self.decision if self.ending is Ending.DECIDED else Decision.PENDING


TIMED_OUT = Outcome(Ending.TIMED_OUT)
CANCELLED = Outcome(Ending.CANCELLED)
RESET = Outcome(Ending.RESET)
APPROVED = Outcome(Ending.DECIDED, Decision.APPROVED)
DENIED = Outcome(Ending.DECIDED, Decision.DENIED)


class SinkError(Exception):
    """A typed refusal of the sink; ``kind`` is the WIT ``sink-error`` case."""

    def __init__(self, kind: str, detail: Any = None) -> None:
        super().__init__(kind if detail is None else f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SinkError)
            and self.kind == other.kind
            and self.detail == other.detail
        )

    def __hash__(self) -> int:
        return hash((self.kind, str(self.detail)))


class GuestFault(SinkError):
    """The guest trapped or broke a limit; its instance was replaced and
    every outstanding wait ended as ``RESET``."""

    def __init__(self, why: str) -> None:
        super().__init__("guest-fault", why)


#: The guest's limits: ``None`` in a :class:`SinkConfig` means the guest's
#: own default, read from the component's ``default-config`` export (the
#: only copy of them, SPEC.md §6).
GUEST_LIMITS = (
    "max_waiters",
    "max_request_id_bytes",
    "max_frame_bytes",
    "verdict_cache_capacity",
    "verdict_cache_ttl",
    "max_timeout",
)


@dataclass(frozen=True)
class SinkConfig:
    """Limits and cache settings of one sink. The guest's limits default to
    ``None``, "the guest's default", which :class:`ApprovalSink` reads from
    the component (:func:`approval_sink.default_config` shows them); the
    host's own defaults are pinned in ``tests/vectors/host-defaults.json``."""

    max_waiters: Optional[int] = None
    """Most waits pending at once (S13; the guest's default 1,000,000)."""
    max_request_id_bytes: Optional[int] = None
    """Longest request id in bytes (S13; default 256)."""
    max_frame_bytes: Optional[int] = None
    """Largest frame in bytes (S13; default 64 KiB)."""
    verdict_cache_capacity: Optional[int] = None
    """Verdicts remembered at most (S4, S15; default 10,000)."""
    verdict_cache_ttl: Optional[float] = None
    """Seconds a verdict is remembered (S15's bound; default 60)."""
    max_timeout: Optional[float] = None
    """Seconds: a longer timeout is cut to this (S11; default 24 h)."""
    max_memory_bytes: int = 1 << 30
    """The guest's linear memory cap; breaking it is a reset (S12, S13)."""
    call_budget: float = 1.0
    """Seconds one guest call may run before it traps (S13)."""
    trusted_keys: Tuple["TrustedKey", ...] = ()
    """Reviewer keys (S17): when given, only verdicts signed by one of them
    are applied; the rest are counted as ``unauthenticated``."""

    def with_guest_defaults(self, defaults: Mapping[str, Any]) -> "SinkConfig":
        """This configuration with each unset guest limit taken from
        ``defaults`` (the component's ``default-config``)."""
        return replace(self, **{name: defaults[name] for name in GUEST_LIMITS if getattr(self, name) is None})

    def check(self) -> None:
        """Raises :class:`SinkError` (``invalid-config``, naming the field)
        for a value no sink can run with (S19): a count that is not an
        integer in the guest's ``u32`` range, a memory cap that is not a
        positive integer, a call budget that is not a positive finite
        number of seconds. Durations the guest takes (``verdict_cache_ttl``,
        ``max_timeout``) saturate instead: ``math.inf`` is "as long as a
        ``u64`` of nanoseconds", NaN or negative is none. Guest limits left
        unset must have been filled in first (:meth:`with_guest_defaults`)."""
        for name in ("max_waiters", "max_request_id_bytes", "max_frame_bytes", "verdict_cache_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32_MAX:
                raise SinkError("invalid-config", f"{name} must be an integer in 0..={U32_MAX}, not {value!r}")
        memory = self.max_memory_bytes
        if isinstance(memory, bool) or not isinstance(memory, int) or not 0 < memory < 1 << 63:
            raise SinkError("invalid-config", f"max_memory_bytes must be a positive integer, not {memory!r}")
        budget = self.call_budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
            raise SinkError("invalid-config", f"call_budget must be a positive finite number of seconds, not {budget!r}")
        for name in ("verdict_cache_ttl", "max_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SinkError("invalid-config", f"{name} must be a number of seconds, not {value!r}")


@dataclass
class Stats:
    """The guest's counters plus this host's."""

    waiters: int = 0
    ids: int = 0
    cached_verdicts: int = 0
    delivered: int = 0
    timed_out: int = 0
    cancelled: int = 0
    early_hits: int = 0
    evictions: int = 0
    conflicts: int = 0
    unauthenticated: int = 0
    malformed: int = 0
    duplicates: int = 0
    last_seq: int = 0
    log_id: int = 0
    log_changes: int = 0
    invalidations: int = 0
    resets: int = 0
    """Guest faults this host recovered from: instances replaced (S12)."""
    oversized_frames: int = 0
    """Frames skipped before the guest for being over ``max_frame_bytes``
    (``push_frame`` and the sources; host-side)."""


GUEST_STATS = [f.name for f in fields(Stats)][:16]


@dataclass
class IngestReport:
    """What one ingest did."""

    events: int
    duplicates: int
    rejected: int
    completed: int
    errors: list = field(default_factory=list)
    fatal: Optional[SinkError] = None
    last_seq: int = 0
    log_id: int = 0

    def merge(self, later: "IngestReport") -> "IngestReport":
        """This report followed by ``later`` (one stream, two guest calls)."""
        return IngestReport(
            events=self.events + later.events,
            duplicates=self.duplicates + later.duplicates,
            rejected=self.rejected + later.rejected,
            completed=self.completed + later.completed,
            errors=self.errors + later.errors,
            fatal=self.fatal or later.fatal,
            last_seq=later.last_seq,
            log_id=later.log_id,
        )
