"""The Python host's benchmark (issue #16): round trip, ingest and a
10k-waiter storm through ``approval_sink``, against a pure-Python baseline
(a dict of ``asyncio.Future``s with ``wait_for``) in the same run, plus the
byte-lowering study and a profile of a round trip.

Run (after the test command made the venv and installed the package):

    target/python/venv/bin/python tests/py/bench_python.py [--profile] [--sources]

``--sources`` adds the sources' replay of a backlog (needs the gateway
binary in ``$APPROVAL_SINK_BIN`` and ``nats-server`` in ``$NATS_SERVER``).

Not a test: it asserts only that every wait ended as it should, and prints
a markdown table for BENCHMARKS.md. Each row runs ours and the baseline
alternately, ``PAIRS`` times, and prints the range.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import platform
import pstats
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).parent))

import wasmtime  # noqa: E402
from frames import stream, verdict_event  # noqa: E402

from approval_sink import ApprovalSink, Decision, SinkConfig  # noqa: E402

PAIRS = 3
ROUND_TRIPS = 5_000
STORM = 10_000
FRAMES = 10_000


class DictSink:
    """The baseline: what a Python agent host writes without the component
    (the original's design: a map of futures, ``wait_for`` for the timeout,
    early verdicts remembered)."""

    def __init__(self) -> None:
        self.waiters: Dict[str, List["asyncio.Future[Decision]"]] = {}
        self.early: Dict[str, Decision] = {}

    def wait_for_approval(self, request_id: str, timeout: float):
        early = self.early.get(request_id)
        fut: "asyncio.Future[Decision]" = asyncio.get_running_loop().create_future()
        if early is not None:
            fut.set_result(early)
        else:
            self.waiters.setdefault(request_id, []).append(fut)
        return self._wait(request_id, fut, timeout)

    async def _wait(self, request_id: str, fut, timeout: float) -> Decision:
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return Decision.PENDING
        finally:
            waiters = self.waiters.get(request_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self.waiters[request_id]

    def on_approval_resolved(self, request_id: str, decision: Decision) -> None:
        self.early[request_id] = decision
        for fut in self.waiters.pop(request_id, []):
            if not fut.done():
                fut.set_result(decision)


def _varint(data: bytes, at: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def python_ingest(sink: DictSink, data: bytes) -> int:
    """The baseline's ingest: the frames decoded in pure Python (only the
    fields a verdict needs) and delivered to the dict."""
    at = events = 0
    while at < len(data):
        length, at = _varint(data, at)
        end = at + length
        request_id, decision = "", 0
        while at < end:
            key, at = _varint(data, at)
            if key & 7 == 0:
                _, at = _varint(data, at)
            elif key & 7 == 1:
                at += 8
            else:
                n, at = _varint(data, at)
                if key >> 3 == 3:  # approval_resolved
                    inner, inner_end = at, at + n
                    while inner < inner_end:
                        k, inner = _varint(data, inner)
                        if k == 0x0A:
                            m, inner = _varint(data, inner)
                            request_id = data[inner : inner + m].decode()
                            inner += m
                        elif k == 0x10:
                            decision, inner = _varint(data, inner)
                        elif k & 7 == 0:
                            _, inner = _varint(data, inner)
                        else:
                            m, inner = _varint(data, inner)
                            inner += m
                at += n
        sink.on_approval_resolved(request_id, Decision(decision))
        events += 1
    return events


def big_config() -> SinkConfig:
    return SinkConfig(verdict_cache_capacity=100_000)


async def round_trips(sink, n: int, prefix: str) -> float:
    """µs per sequential wait → verdict → resumed."""
    t = time.perf_counter()
    for i in range(n):
        request_id = f"{prefix}-{i}"
        decision = sink.wait_for_approval(request_id, 30)
        sink.on_approval_resolved(request_id, Decision.APPROVED)
        assert await decision == Decision.APPROVED
    return (time.perf_counter() - t) / n * 1e6


async def detailed_round_trips(sink: ApprovalSink, n: int, prefix: str) -> float:
    t = time.perf_counter()
    for i in range(n):
        request_id = f"{prefix}-{i}"
        outcome = sink.wait(request_id, 30)
        sink.deliver(request_id, Decision.APPROVED)
        assert (await outcome).decided_by is not None
    return (time.perf_counter() - t) / n * 1e6


async def timeout_storm(sink, n: int, prefix: str) -> float:
    """ms until `n` concurrent 10 ms waits have all ended PENDING."""
    t = time.perf_counter()
    waits = [sink.wait_for_approval(f"{prefix}-{i}", 0.01) for i in range(n)]
    results = await asyncio.gather(*waits)
    assert all(r == Decision.PENDING for r in results)
    return (time.perf_counter() - t) * 1e3


async def verdict_storm(sink, n: int, prefix: str, ingest: Callable[[bytes], object]) -> float:
    """ms for `n` concurrent waits resolved by one stream of `n` verdicts."""
    data = stream(*[verdict_event(i + 1, f"{prefix}-{i}", Decision.APPROVED) for i in range(n)])
    t = time.perf_counter()
    waits = [sink.wait_for_approval(f"{prefix}-{i}", 30) for i in range(n)]
    await asyncio.sleep(0)
    ingest(data)
    results = await asyncio.gather(*waits)
    assert all(r == Decision.APPROVED for r in results)
    return (time.perf_counter() - t) * 1e3


def ingest_rate(feed: Callable[[bytes], object], data: bytes, chunk: int) -> float:
    """Frames per second through `feed` in chunks of `chunk` bytes."""
    t = time.perf_counter()
    for at in range(0, len(data), chunk):
        feed(data[at : at + chunk])
    return FRAMES / (time.perf_counter() - t)


def spread(values: List[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}-{hi:{fmt}}" if f"{lo:{fmt}}" != f"{hi:{fmt}}" else f"{lo:{fmt}}"


async def source_rows() -> List[Tuple[str, str, str, str]]:
    """Events/s for the gRPC and NATS sources replaying a 10,000-event
    backlog into a sink, and grpc.aio's own read rate (the floor)."""
    import grpc
    import nats as nats_client
    from test_grpc import Gateway, free_port
    from test_nats import NatsServer

    from approval_sink.grpc import SUBSCRIBE, GrpcSource, subscribe_request
    from approval_sink.nats import NatsSource, resolved_subject
    from approval_sink._wire import varint

    n = FRAMES
    rows = []

    async def replay(source) -> float:
        sink = ApprovalSink(big_config())
        t = time.perf_counter()
        task = asyncio.ensure_future(source.run(sink))
        while sink.resume_point()[1] < n:
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return n / (time.perf_counter() - t)

    port = free_port()
    with Gateway(port, "--retention", str(2 * n)):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            resolve = channel.unary_unary(
                "/assembly.gateway.v1.ReviewService/Resolve",
                request_serializer=lambda b: b, response_deserializer=lambda b: b,
            )
            for i in range(0, n, 100):
                await asyncio.gather(*[
                    resolve(b"\x0a" + varint(len(f"r{j}")) + f"r{j}".encode() + b"\x10\x01") for j in range(i, i + 100)
                ])
            subscribe = channel.unary_stream(SUBSCRIBE, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            floor = []
            for _ in range(PAIRS):
                call, t = subscribe(subscribe_request("", 0, 0)), time.perf_counter()
                for _ in range(n):
                    await call.read()
                floor.append(n / (time.perf_counter() - t))
                call.cancel()
        rates = [await replay(GrpcSource(f"127.0.0.1:{port}")) for _ in range(PAIRS)]
    rows.append((f"gRPC source: replay of a {n:,}-event backlog from the Rust gateway",
                 spread([r / 1e3 for r in rates], ".1f") + "k events/s", "", ""))
    rows.append(("  floor: grpc.aio reading the same stream, nothing else",
                 spread([r / 1e3 for r in floor], ".1f") + "k events/s", "", ""))
    import tempfile

    with tempfile.TemporaryDirectory() as store, NatsServer(store) as server:
        nc = await nats_client.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="APPROVALS", subjects=["approvals.v1.>"])
        for i in range(0, n, 500):
            await asyncio.gather(*[
                js.publish(resolved_subject(f"r{j}"), verdict_event(0, f"r{j}", Decision.APPROVED)) for j in range(i, i + 500)
            ])
        await nc.close()
        rates = [await replay(NatsSource(server.url)) for _ in range(PAIRS)]
    rows.append((f"NATS source: replay of a {n:,}-event JetStream backlog",
                 spread([r / 1e3 for r in rates], ".1f") + "k events/s", "", ""))
    return rows


async def main(profile: bool, sources: bool) -> None:
    rows: List[Tuple[str, str, str, str]] = []
    frames = [verdict_event(i + 1, f"req-{i}", Decision.APPROVED) for i in range(FRAMES)]
    data = stream(*frames)
    sink = ApprovalSink(big_config())
    await round_trips(sink, 500, "warm")  # compile, caches

    ours, base = [], []
    for p in range(PAIRS):
        ours.append(await round_trips(ApprovalSink(big_config()), ROUND_TRIPS, f"rt{p}"))
        base.append(await round_trips(DictSink(), ROUND_TRIPS, f"rt{p}"))
    rows.append(("round trip: wait_for_approval → on_approval_resolved → resumed", spread(ours, ".0f") + " µs",
                 spread(base, ".1f") + " µs", spread([o / b for o, b in zip(ours, base)], ".0f") + "x"))
    detailed = [await detailed_round_trips(ApprovalSink(big_config()), ROUND_TRIPS, f"d{p}") for p in range(PAIRS)]
    rows.append(("round trip with who decided: wait → deliver → Outcome.decided_by", spread(detailed, ".0f") + " µs", "", ""))

    ours, base = [], []
    for p in range(PAIRS):
        ours.append(await timeout_storm(ApprovalSink(big_config()), STORM, f"ts{p}"))
        base.append(await timeout_storm(DictSink(), STORM, f"ts{p}"))
    rows.append((f"{STORM:,} concurrent waits × 10 ms timeout storm, until all PENDING", spread(ours, ".0f") + " ms",
                 spread(base, ".0f") + " ms", spread([o / b for o, b in zip(ours, base)], ".2f") + "x"))
    ours, base = [], []
    for p in range(PAIRS):
        s = ApprovalSink(big_config())
        ours.append(await verdict_storm(s, STORM, f"vs{p}", s.ingest_bytes))
        d = DictSink()
        base.append(await verdict_storm(d, STORM, f"vs{p}", lambda b: python_ingest(d, b)))
    rows.append((f"{STORM:,} concurrent waits resolved by one {STORM:,}-frame stream", spread(ours, ".0f") + " ms",
                 spread(base, ".0f") + " ms", spread([o / b for o, b in zip(ours, base)], ".2f") + "x"))

    ours, base = [], []
    for _ in range(PAIRS):
        ours.append(ingest_rate(ApprovalSink(big_config()).ingest_bytes, data, len(data)))
        d = DictSink()
        base.append(ingest_rate(lambda b: python_ingest(d, b), data, len(data)))
    rows.append((f"ingest {FRAMES:,} verdict frames ({len(data):,} B), one call, no waiters",
                 spread([o / 1e3 for o in ours], ".0f") + "k frames/s", spread([b / 1e3 for b in base], ".0f") + "k frames/s",
                 spread([b / o for o, b in zip(ours, base)], ".2f") + "x"))
    for chunk in (1 << 10, 16 << 10, 64 << 10):
        rates = [ingest_rate(ApprovalSink(big_config()).ingest_bytes, data, chunk) for _ in range(PAIRS)]
        rows.append((f"  the same in {chunk >> 10} KiB chunks", spread([r / 1e3 for r in rates], ".0f") + "k frames/s", "", ""))
    rates = []
    for _ in range(PAIRS):
        s = ApprovalSink(big_config())
        t = time.perf_counter()
        for f in frames:
            s.push_frame(f)
        rates.append(FRAMES / (time.perf_counter() - t))
    rows.append(("  one `push_frame` per event (one guest call each)", spread([r / 1e3 for r in rates], ".1f") + "k frames/s", "", ""))

    # The lowering study: the same bytes through wasmtime-py's own
    # `Func.__call__` (one ctypes value per byte), and the floor: `apply`
    # with bytes the guest stops reading at once (lowering and the call,
    # no guest work).
    stock = []
    for _ in range(PAIRS):
        s = ApprovalSink(big_config())
        call = s._guest.registry._funcs["ingest-frames"]
        t = time.perf_counter()
        call._func(s._guest.registry._store, data)
        call.post_return(s._guest.registry._store)
        stock.append(FRAMES / (time.perf_counter() - t))
    rows.append(("  the one call through wasmtime-py's stock `Func.__call__` (per-byte lowering)",
                 spread([r / 1e3 for r in stock], ".0f") + "k frames/s", "", ""))
    floor = []
    junk = b"\xff" * len(data)
    for _ in range(PAIRS):
        s = ApprovalSink(big_config())
        t = time.perf_counter()
        s._guest.registry.apply(0, junk)
        floor.append(FRAMES / (time.perf_counter() - t))
    rows.append((f"  floor: {len(data):,} B lowered into one `apply` the guest stops reading at once",
                 spread([r / 1e3 for r in floor], ".0f") + "k frames/s (" + spread([len(data) / (FRAMES / r) / 1e6 for r in floor], ".0f") + " MB/s)", "", ""))

    if sources:
        rows.extend(await source_rows())

    print(f"Python {platform.python_version()}, wasmtime-py {wasmtime.__version__ if hasattr(wasmtime, '__version__') else '50.0.1'}, {platform.machine()}")
    print()
    print("| workload | approval_sink (component) | pure Python dict of futures | time, ours / baseline |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    if profile:
        s = ApprovalSink(big_config())
        await round_trips(s, 200, "pw")
        prof = cProfile.Profile()
        prof.enable()
        await round_trips(s, ROUND_TRIPS, "p")
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        print()
        print(out.getvalue())


if __name__ == "__main__":
    args = argparse.ArgumentParser(description="approval_sink Python benchmark")
    args.add_argument("--profile", action="store_true", help="also print a cProfile of the round trip")
    args.add_argument("--sources", action="store_true", help="also the sources' replay (gateway and nats-server)")
    opts = args.parse_args()
    asyncio.run(main(opts.profile, opts.sources))
