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
from .types import GUEST_STATS, DecidedBy, Decision, Ending, IngestReport, Outcome, SinkConfig, SinkError, Stats

_IFACE = "assembly:approval/registry@0.1.0"
_COMPILED: Dict[str, Tuple[Engine, Component]] = {}
_GUEST_DEFAULTS: Dict[str, Dict[str, Any]] = {}
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


def _linker(engine: Engine, now_ns: Callable[[], int], on_invalidated: Callable[[str], None]) -> Linker:
    """A linker with the guest's two imports: the clock and host events."""
    linker = Linker(engine)
    with linker.root() as root:
        with root.add_instance("assembly:approval/clock@0.1.0") as clock:
            add_clock(clock, now_ns)
        with root.add_instance("assembly:approval/host-events@0.1.0") as events:
            events.add_func("policy-invalidated", lambda _store, agent: on_invalidated(agent))
    return linker


def guest_defaults(path: Path) -> Dict[str, Any]:
    """The guest's default limits, as :class:`SinkConfig` fields (seconds
    for durations), read from the component's ``default-config`` export:
    the only copy of them (SPEC.md §6). Once per process and component."""
    key = str(path.resolve())
    with _COMPILE_LOCK:
        cached = _GUEST_DEFAULTS.get(key)
    if cached is not None:
        return cached
    engine, component = compiled(path)
    store = Store(engine)
    store.set_epoch_deadline(1 << 62)
    instance = _linker(engine, lambda: 0, lambda _agent: None).instantiate(store, component)
    iface = instance.get_export_index(store, _IFACE)
    call = Call(instance.get_func(store, instance.get_export_index(store, "default-config", iface)), store)
    d = call(store)
    call.post_return(store)
    cached = {
        "max_waiters": d["max-waiters"],
        "max_request_id_bytes": d["max-request-id-bytes"],
        "max_frame_bytes": d["max-frame-bytes"],
        "verdict_cache_capacity": d["verdict-cache-capacity"],
        "verdict_cache_ttl": d["verdict-cache-ttl-ns"] / 1e9,
        "max_timeout": d["max-timeout-ns"] / 1e9,
    }
    with _COMPILE_LOCK:
        _GUEST_DEFAULTS[key] = cached
    return cached


def _decision(name: str) -> Decision:
    # `_abi` lifts an enum as its case name.
    return Decision.APPROVED if name == "approved" else Decision.DENIED


def _outcome(v: Variant) -> Outcome:
    if v.tag == "decided":
        return Outcome(Ending.DECIDED, _decision(v.payload))
    return Outcome(Ending(v.tag))


def sink_error(v: Variant) -> SinkError:
    """The typed error of a WIT ``sink-error`` value."""
    return SinkError(v.tag, v.payload)


class Applied:
    """What a batch call finished."""

    __slots__ = ("done", "next_deadline", "journal", "errors", "woken")

    def __init__(self, batch: Any, errors: List[Tuple[int, SinkError]], woken: int) -> None:
        self.done: List[Tuple[int, Outcome]] = [(c["waiter"], _outcome(c["outcome"])) for c in batch["done"]]
        self.next_deadline: Optional[int] = batch["next-deadline"]
        self.journal: bytes = batch["journal"]
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
        linker = _linker(engine, now_ns, on_invalidated)
        self._store = Store(engine)
        self._store.set_limits(memory_size=config.max_memory_bytes)
        self._store.set_epoch_deadline(self._budget_ticks)
        instance = linker.instantiate(self._store, component)
        iface = instance.get_export_index(self._store, _IFACE)
        self._funcs: Dict[str, Call] = {}
        for name in (
            "configure", "apply", "expire", "ingest-frames", "apply-frame", "resume-from", "restore-verdicts", "stats", "decided-by", "set-trusted-keys",
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
        self._call_or_raise("configure", cfg)
        if config.trusted_keys:
            # Only with keys, as the Rust adapter: an empty list would mean
            # "trust none", and every verdict would be refused.
            keys = []
            for key in config.trusted_keys:
                record = Record()
                record.id = key.id
                setattr(record, "public-key", bytes(key.public_key))
                keys.append(record)
            self._call_or_raise("set-trusted-keys", keys)

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

    def _call_or_raise(self, name: str, *args: Any) -> None:
        """A call returning ``result<_, sink-error>``; raises the error."""
        refused = self._call(name, *args)
        if isinstance(refused, Err):
            raise sink_error(refused.value)

    def apply(self, now: int, ops: bytes) -> Applied:
        a = self._call("apply", now, ops)
        errors = [(e["op"], sink_error(e["error"])) for e in a["errors"]]
        return Applied(a["batch"], errors, a["woken"])

    def expire(self) -> Applied:
        return Applied(self._call("expire"), [], 0)

    def ingest(self, name: str, data: bytes) -> Tuple[IngestReport, Applied]:
        r = self._call(name, data)
        applied = Applied(r["batch"], [], 0)
        report = IngestReport(
            events=r["events"],
            duplicates=r["duplicates"],
            rejected=r["rejected"],
            completed=len(applied.done),
            errors=[sink_error(e) for e in r["errors"]],
            fatal=None if r["fatal"] is None else sink_error(r["fatal"]),
            last_seq=r["last-seq"],
            log_id=r["log-id"],
        )
        return report, applied

    def resume_from(self, log_id: int, seq: int) -> None:
        self._call("resume-from", log_id, seq)

    def restore_verdicts(self, journal: bytes) -> int:
        return self._call("restore-verdicts", journal)

    def decided_by(self, request_id: str) -> Optional[DecidedBy]:
        d = self._call("decided-by", request_id)
        if d is None:
            return None
        return DecidedBy(
            _decision(d["decision"]),
            d["reviewer"] or None,
            d["key-id"] or None,
            d["resolved-at-unix-ms"] or None,
        )

    def stats(self) -> Stats:
        s = self._call("stats")
        return Stats(**{n: s[n.replace("_", "-")] for n in GUEST_STATS})



__all__ = ["Registry", "Applied", "WasmtimeError", "default_component_path", "guest_defaults", "sink_error"]
