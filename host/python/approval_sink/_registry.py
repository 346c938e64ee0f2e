"""One instance of the ``approval-registry`` component in wasmtime-py.

This module owns the store and the instance, and turns the WIT values the
calls return (``_abi``'s dicts and variants) into this package's types;
nothing else touches them.
A wasmtime error from a call is a guest fault: the instance is then
unusable and the sink replaces it (S12).
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from wasmtime import Config, Engine, Store, WasmtimeError
from wasmtime.component import Component, Linker, Record, Variant

from ._abi import Call, Err, add_clock, self_check

from .clock import seconds_to_ns
from .types import GUEST_STATS, DecidedBy, Decision, Ending, Outcome, SinkConfig, SinkError, Stats

_IFACE = "assembly:approval/registry@0.1.0"
_COMPILED: Dict[str, Tuple[Engine, Component]] = {}
_COMPILE_LOCK = threading.Lock()

# S13's per-call budget, as in the Rust adapter: the engine's epoch ticks
# every EPOCH_TICK seconds on a daemon thread, and each call may run
# `call_budget` worth of ticks before it traps (a runaway guest becomes a
# reset, never a hung agent host).
EPOCH_TICK = 0.01


def _tick(engine: Engine) -> None:
    import time

    while True:
        time.sleep(EPOCH_TICK)
        engine.increment_epoch()


def default_component_path() -> Path:
    """Where the component is looked for: ``$APPROVAL_SINK_WASM``, else the
    ``approval-registry.wasm`` written into this package before install."""
    env = os.environ.get("APPROVAL_SINK_WASM")
    if env:
        return Path(env)
    return Path(__file__).with_name("approval-registry.wasm")


def compiled(path: Path) -> Tuple[Engine, Component]:
    """Compiles a component once per process and path (Cranelift takes
    ~100 ms; an instance takes microseconds)."""
    key = str(path.resolve())
    with _COMPILE_LOCK:
        if key not in _COMPILED:
            if not path.exists():
                raise FileNotFoundError(
                    f"{path}: write it with `approval-sink export -o {path}` "
                    "(or set APPROVAL_SINK_WASM)"
                )
            config = Config()
            config.epoch_interruption = True
            self_check()
            engine = Engine(config)
            _COMPILED[key] = (engine, Component.from_file(engine, str(path)))
            threading.Thread(target=_tick, args=(engine,), name="approval-sink-epoch", daemon=True).start()
        return _COMPILED[key]


def _field(record: Any, name: str) -> Any:
    return record[name]


def _outcome(v: Any) -> Outcome:
    # wasmtime-py hands a variant back as `Variant(tag, payload)`; an enum
    # (the decision) as its case name.
    if isinstance(v, Variant):
        if v.tag == "decided":
            return Outcome(Ending.DECIDED, Decision.APPROVED if v.payload == "approved" else Decision.DENIED)
        return Outcome(Ending(v.tag))
    return Outcome(Ending(v))


def sink_error(v: Any) -> SinkError:
    """The typed error of a WIT ``sink-error`` value."""
    if isinstance(v, Variant):
        return SinkError(v.tag, v.payload)
    return SinkError(str(v))


class Applied:
    """What a batch call finished."""

    __slots__ = ("done", "next_deadline", "remembered", "errors", "woken")

    def __init__(self, batch: Any, errors: List[Tuple[int, SinkError]], woken: int) -> None:
        self.done: List[Tuple[int, Outcome]] = [
            (_field(c, "waiter"), _outcome(_field(c, "outcome"))) for c in _field(batch, "done")
        ]
        self.next_deadline: Optional[int] = _field(batch, "next-deadline")
        self.remembered: bytes = _field(batch, "remembered")
        self.errors = errors
        self.woken = woken


class Registry:
    """One instance; every method is one guest call (and its post-return)."""

    def __init__(
        self,
        path: Path,
        config: SinkConfig,
        now_ns: Callable[[], int],
        on_invalidated: Callable[[str], None],
    ) -> None:
        engine, component = compiled(path)
        # One tick may pass right after arming: round up and add one.
        # Saturated: a budget of centuries is "no budget", never an error.
        self._budget_ticks = min(int(config.call_budget / EPOCH_TICK + 0.999999) + 1, 1 << 62)
        self.trap_next = False
        linker = Linker(engine)
        with linker.root() as root:
            with root.add_instance("assembly:approval/clock@0.1.0") as clock:
                add_clock(clock, now_ns)
            with root.add_instance("assembly:approval/host-events@0.1.0") as events:
                events.add_func("policy-invalidated", lambda _store, agent: on_invalidated(agent))
        self._store = Store(engine)
        self._store.set_limits(memory_size=config.max_memory_bytes)
        self._store.set_epoch_deadline(self._budget_ticks)
        instance = linker.instantiate(self._store, component)
        iface = instance.get_export_index(self._store, _IFACE)
        self._funcs: Dict[str, Call] = {}
        for name in (
            "configure", "apply", "expire", "ingest-frames", "apply-frame", "reset-stream",
            "resume-from", "restore-verdicts", "stats", "decided-by", "set-trusted-keys",
        ):
            index = instance.get_export_index(self._store, name, iface)
            self._funcs[name] = Call(instance.get_func(self._store, index), self._store)
        cfg = Record()
        for name, value in (
            ("max-waiters", config.max_waiters),
            ("max-request-id-bytes", config.max_request_id_bytes),
            ("max-frame-bytes", config.max_frame_bytes),
            ("verdict-cache-capacity", config.verdict_cache_capacity),
            ("verdict-cache-ttl-ns", seconds_to_ns(config.verdict_cache_ttl)),
            ("max-timeout-ns", seconds_to_ns(config.max_timeout)),
            # S20: a fresh random seed per instance.
            ("hash-seed", random.getrandbits(64)),
        ):
            setattr(cfg, name, value)
        refused = self._call("configure", cfg)
        if isinstance(refused, Err):
            raise sink_error(refused.value)
        if config.trusted_keys:
            # Only with keys, as the Rust adapter: an empty list would mean
            # "trust none", and every verdict would be refused.
            keys = []
            for key in config.trusted_keys:
                record = Record()
                record.id = key.id
                setattr(record, "public-key", bytes(key.public_key))
                keys.append(record)
            refused = self._call("set-trusted-keys", keys)
            if isinstance(refused, Err):
                raise sink_error(refused.value)

    def _call(self, name: str, *args: Any) -> Any:
        # A budget of 0 ticks traps at the guest's first check: the test
        # hook for S12, the same trap a runaway call gets.
        ticks = 0 if self.trap_next else self._budget_ticks
        self.trap_next = False
        self._store.set_epoch_deadline(ticks)
        func = self._funcs[name]
        out = func(self._store, *args)
        func.post_return(self._store)
        return out

    def apply(self, now: int, ops: bytes) -> Applied:
        a = self._call("apply", now, ops)
        errors = [(_field(e, "op"), sink_error(_field(e, "error"))) for e in _field(a, "errors")]
        return Applied(_field(a, "batch"), errors, _field(a, "woken"))

    def expire(self) -> Applied:
        return Applied(self._call("expire"), [], 0)

    def ingest(self, name: str, data: bytes) -> Tuple[Any, Applied]:
        r = self._call(name, data)
        return r, Applied(_field(r, "batch"), [], 0)

    def reset_stream(self) -> int:
        return self._call("reset-stream")

    def resume_from(self, log_id: int, seq: int) -> None:
        self._call("resume-from", log_id, seq)

    def restore_verdicts(self, journal: bytes) -> int:
        return self._call("restore-verdicts", journal)

    def decided_by(self, request_id: str) -> Optional[DecidedBy]:
        d = self._call("decided-by", request_id)
        if d is None:
            return None
        at = _field(d, "resolved-at-unix-ms")
        return DecidedBy(
            Decision.APPROVED if _field(d, "decision") == "approved" else Decision.DENIED,
            _field(d, "reviewer") or None,
            _field(d, "key-id") or None,
            at or None,
        )

    def stats(self) -> Stats:
        s = self._call("stats")
        return Stats(**{n: _field(s, n.replace("_", "-")) for n in GUEST_STATS})



__all__ = ["Registry", "Applied", "WasmtimeError", "default_component_path", "sink_error"]
