"""A before/after check of one Python host revision against another: the
round trip and one 10,000-frame ingest, with whatever ``approval_sink`` is
on ``PYTHONPATH`` (BENCHMARKS.md, "Python"):

    git archive <rev> host/python | tar -x -C /tmp/before
    cp host/python/approval_sink/approval-registry.wasm /tmp/before/host/python/approval_sink/
    PYTHONPATH=/tmp/before/host/python target/python/venv/bin/python tests/py/bench_before_after.py before
    PYTHONPATH=host/python target/python/venv/bin/python tests/py/bench_before_after.py after
"""
import asyncio, sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from frames import stream, verdict_event
from approval_sink import ApprovalSink, Decision, SinkConfig
async def rt(n):
    s = ApprovalSink(SinkConfig(verdict_cache_capacity=100000))
    for i in range(200):
        d = s.wait_for_approval(f"w{i}", 30); s.on_approval_resolved(f"w{i}", Decision.APPROVED); await d
    t = time.perf_counter()
    for i in range(n):
        d = s.wait_for_approval(f"r{i}", 30); s.on_approval_resolved(f"r{i}", Decision.APPROVED); await d
    return (time.perf_counter() - t) / n * 1e6
data = stream(*[verdict_event(i + 1, f"req-{i}", 1) for i in range(10000)])
r = asyncio.run(rt(5000))
s = ApprovalSink(SinkConfig(verdict_cache_capacity=100000)); t = time.perf_counter(); s.ingest_bytes(data); i = 10000 / (time.perf_counter() - t)
print(f"{sys.argv[1]}: round trip {r:.0f} us, ingest {i/1e3:.0f}k frames/s")
