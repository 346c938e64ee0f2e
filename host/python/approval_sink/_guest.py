"""One sink's guest: the component instance, every call into it, and the
trap recovery that replaces it (S12), carrying the remembered verdicts
(S18) and the resume point over. Also how much one call may carry.

Invariants: every call goes through :meth:`Guest.call`, so a trap is
always a reset and policy invalidations always reach the listeners after
the call (a listener may call back into the sink); after a reset the fresh
instance remembers the journal's verdicts and resumes where the old one
stood, and the sink's ``on_reset`` ends every outstanding wait."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, List, Tuple

from ._journal import Journal
from ._registry import Registry, WasmtimeError
from .types import GuestFault, SinkConfig

log = logging.getLogger("approval_sink")

#: The most stream bytes one `ingest-frames` call takes: lowering costs 32
#: bytes of buffers a byte (`_abi`).
MAX_INGEST_CALL_BYTES = 1 << 20

#: A pessimistic cost of one Ed25519 verification in the guest (seconds),
#: the share of the call budget verification may take, and the smallest
#: signed verdict frame: the Rust adapter's figures, pinned in
#: `tests/vectors/host-defaults.json`.
VERIFY_COST = 500e-6
VERIFY_SHARE_OF_BUDGET = 4
MIN_SIGNED_FRAME_BYTES = 87


def signed_chunk_bytes(call_budget: float) -> int:
    """How many stream bytes one call may take with trusted keys, so that
    verifying every signature in them stays well inside the budget (S17)."""
    verifications = int(call_budget / VERIFY_SHARE_OF_BUDGET / VERIFY_COST)
    return max(1, verifications) * MIN_SIGNED_FRAME_BYTES


class Guest:
    """The instance of one sink, replaced after a trap."""

    def __init__(self, path: Path, config: SinkConfig, clock: Any, on_reset: Callable[[], None]) -> None:
        self._path = path
        self._config = config
        self._clock = clock
        self._on_reset = on_reset
        self._invalidated: List[str] = []
        self.listeners: List[Callable[[str], None]] = []
        self.journal = Journal(config.verdict_cache_capacity, config.max_request_id_bytes)
        self._resume: Tuple[int, int] = (0, 0)
        self.resets = 0
        self.registry = self._new_registry()

    def _new_registry(self) -> Registry:
        return Registry(self._path, self._config, self._clock.now_ns, self._invalidated.append)

    @property
    def resume(self) -> Tuple[int, int]:
        """``(log_id, last_seq)``: where the stream stands, kept here so it
        survives a reset."""
        return self._resume

    def stream_moved(self, log_id: int, last_seq: int) -> None:
        """Records where the stream stands after an ingest, for the next
        fresh instance to resume from."""
        self._resume = (log_id, last_seq)

    def inject_trap(self) -> None:
        """Makes the next call trap, as a guest bug would (tests of S12)."""
        self.registry.trap_next = True

    def call(self, f: Callable[[Registry], Any]) -> Any:
        """``f`` on the instance; a fault resets it and raises
        :class:`GuestFault`."""
        try:
            return f(self.registry)
        except WasmtimeError as e:
            self._reset(str(e))
            raise GuestFault(str(e)) from e
        finally:
            self._dispatch_invalidations()

    def _reset(self, why: str) -> None:
        self.resets += 1
        log.error("approval-sink guest faulted (%s); resetting its instance", why)
        self.registry = self._new_registry()
        self.registry.restore_verdicts(self.journal.bytes())
        self.registry.resume_from(*self._resume)
        self._on_reset()

    def _dispatch_invalidations(self) -> None:
        while self._invalidated:
            agent = self._invalidated.pop(0)
            for listener in list(self.listeners):
                try:
                    listener(agent)
                except Exception:  # noqa: BLE001 - one listener's bug stays its own
                    log.exception("policy invalidation listener failed for %r", agent)
