"""What only the Python host can show of S1-S20 (SPEC.md): asyncio
cancellation, the real clock, its own refusals before the guest, its
journal bound, its configuration checks. The rules every host shares are
the scenarios of `tests/scenarios/`, replayed by `test_scenarios.py`."""

import asyncio

import pytest
from conftest import run
from frames import stream, verdict_event

from approval_sink import (
    APPROVED,
    DENIED,
    RESET,
    TIMED_OUT,
    ApprovalSink,
    Decision,
    GuestFault,
    ManualClock,
    SinkConfig,
    SinkError,
    invalidation_frame,
)


def test_s1_wait_for_approval_registers_at_the_call(make_sink):
    async def body():
        sink, _ = make_sink()
        decision = sink.wait_for_approval("req-1", 30)
        sink.on_approval_resolved("req-1", Decision.DENIED)
        assert await decision == Decision.DENIED

    run(body())


def test_s3_a_real_clock_times_out_too():
    async def body():
        sink = ApprovalSink()
        assert await sink.wait_for_approval("req-1", 0.05) == Decision.PENDING

    run(body())


def test_s7_a_cancelled_task_removes_its_waiter(make_sink):
    async def body():
        sink, _ = make_sink()
        task = asyncio.ensure_future(sink.wait_for_approval("req-1", 30))
        await asyncio.sleep(0)
        assert sink.waiter_count() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sink.waiter_count() == 0
        s = sink.stats()
        assert (s.waiters, s.cancelled) == (0, 1)
        assert sink.deliver("req-1", Decision.APPROVED) == 0

    run(body())


def test_s7_a_wait_cancelled_before_any_flush_never_waits(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        wait.cancel()
        assert sink.waiter_count() == 0
        assert sink.stats().waiters == 0

    run(body())


def test_s7_wait_for_timeout_cancels_the_loser(make_sink):
    async def body():
        sink = ApprovalSink()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sink.wait("req-1", 30), 0.02)
        assert sink.waiter_count() == 0

    run(body())


def test_s8_pending_and_unspecified_are_not_verdicts(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        for d in (Decision.PENDING, Decision.UNSPECIFIED):
            with pytest.raises(SinkError) as e:
                sink.deliver("req-1", d)
            assert e.value.kind == "unknown-decision"
        report = sink.ingest_bytes(stream(verdict_event(1, "req-1", 3)))
        assert (report.events, report.rejected) == (0, 1)
        assert report.errors[0].kind == "unknown-decision"
        assert sink.waiter_count() == 1, "the waiter is untouched"
        sink.deliver("req-1", Decision.APPROVED)
        assert await wait == APPROVED

    run(body())


def test_s10_policy_invalidations_reach_every_listener(make_sink):
    async def body():
        sink, _ = make_sink()
        heard_a, heard_b = [], []

        def broken(agent):
            raise RuntimeError("a listener's bug")

        sink.add_invalidation_listener(heard_a.append)
        sink.add_invalidation_listener(broken)
        sink.add_invalidation_listener(heard_b.append)
        wait = sink.wait("req-1", 30)
        sink.on_policy_invalidated("agent-7")
        # A verdict event and an invalidation in one call: the broken
        # listener costs neither the other listeners nor the verdict.
        sink.ingest_bytes(stream(invalidation_frame(""), verdict_event(1, "req-1", Decision.APPROVED)))
        assert heard_a == heard_b == ["agent-7", ""]
        assert await wait == APPROVED
        assert sink.stats().invalidations == 2

    run(body())


def test_s13_a_refused_wait_is_pending_and_a_lone_surrogate_is_a_typed_refusal(make_sink):
    async def body():
        sink, _ = make_sink()
        ok = sink.wait("ok", 30)
        assert await sink.wait_for_approval("", 1) == Decision.PENDING
        # A str UTF-8 cannot hold (a lone surrogate): the guest's typed
        # refusal, for a wait and for a verdict, never a UnicodeEncodeError.
        with pytest.raises(SinkError) as surrogate:
            await sink.wait("req-\udc80", 1)
        assert surrogate.value.kind == "malformed-frame"
        with pytest.raises(SinkError) as surrogate:
            sink.deliver("req-\udc80", Decision.APPROVED)
        assert surrogate.value.kind == "malformed-frame"
        sink.on_approval_resolved("req-\udc80", Decision.APPROVED)  # logged
        sink.on_policy_invalidated("agent-\udc80")  # logged too
        assert sink.decided_by("req-\udc80") is None
        sink.deliver("ok", Decision.APPROVED)
        assert await ok == APPROVED

    run(body())


def test_s13_an_oversized_frame_is_refused_before_the_guest_and_a_long_stream_goes_in_pieces(make_sink):
    async def body():
        sink, _ = make_sink(SinkConfig(max_frame_bytes=1024, verdict_cache_capacity=100_000))
        with pytest.raises(SinkError) as refused:
            sink.push_frame(verdict_event(1, "x" * 2000, Decision.APPROVED))
        assert refused.value == SinkError("frame-too-large", len(verdict_event(1, "x" * 2000, 1)))
        assert sink.stats().oversized_frames == 1
        # Over a megabyte of frames: several guest calls, frames straddling
        # their edges, every one applied in order.
        frames = [verdict_event(seq, f"req-{seq:08}", Decision.APPROVED) for seq in range(1, 60_001)]
        data = stream(*frames)
        assert len(data) > 1 << 20
        report = sink.ingest_bytes(data)
        assert (report.events, report.rejected, report.last_seq, report.fatal) == (60_000, 0, 60_000, None)
        assert await sink.wait("req-00031337", 1) == APPROVED

    run(body())


def test_s20_each_instance_has_its_own_hash_seed():
    # The seed is drawn per instance and never leaves it; what the host
    # can check is that two sinks with the same ids behave the same.
    async def body():
        a, b = ApprovalSink(clock=ManualClock()), ApprovalSink(clock=ManualClock())
        for sink in (a, b):
            waits = [sink.wait(f"id-{i}", 30) for i in range(100)]
            for i in range(100):
                sink.deliver(f"id-{i}", Decision.APPROVED)
            assert await asyncio.gather(*waits) == [APPROVED] * 100

    run(body())


def test_waiter_count_agrees_with_guest_stats(make_sink):
    async def body():
        sink, _ = make_sink()
        sink.deliver("early", Decision.APPROVED)
        settled = sink.wait("early", 30)
        pending = sink.wait("other", 30)
        assert sink.waiter_count() == 1 == sink.stats().waiters
        assert await settled == APPROVED
        pending.cancel()
        assert sink.waiter_count() == 0 == sink.stats().waiters

    run(body())


def test_a_polled_queued_wait_is_flushed_by_the_event_loop(make_sink):
    async def body():
        sink, _ = make_sink()
        sink.deliver("early", Decision.DENIED)
        # Nothing but the event loop's own turn sends the queue.
        assert await asyncio.wait_for(sink.wait("early", 30), 1) == DENIED

    run(body())


def test_a_wait_cancelled_after_its_verdict_keeps_it(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        sink.deliver("req-1", Decision.APPROVED)
        wait.cancel()  # too late: the outcome is already set
        assert await wait == APPROVED
        assert sink.stats().cancelled == 0

    run(body())


def test_s18_the_journal_carried_over_is_bounded_and_keeps_the_newest(make_sink):
    async def body():
        sink, _ = make_sink(SinkConfig(verdict_cache_capacity=10, max_request_id_bytes=16))
        for chunk in range(100):
            frames = (verdict_event(chunk * 10 + i + 1, f"r{chunk * 10 + i}", 1) for i in range(10))
            sink.ingest_bytes(stream(*frames))
        for i in range(5):
            sink.deliver(f"d{i}", Decision.DENIED)
        # At least the newest 10 entries of the longest id, and not much more.
        assert len(sink._guest.journal.bytes()) <= 2 * 10 * (13 + 16) + 200
        sink.inject_trap()
        with pytest.raises(GuestFault):
            sink.stats()
        # The newest verdicts are final in the fresh instance (S15 and S18).
        for request_id, verdict in [("d4", DENIED), ("d0", DENIED), ("r999", APPROVED), ("r995", APPROVED)]:
            assert await asyncio.wait_for(sink.wait(request_id, 30), 5) == verdict
        with pytest.raises(SinkError) as e:
            sink.deliver("d4", Decision.APPROVED)
        assert e.value.kind == "conflicting-verdict"
        assert sink.stats().cached_verdicts == 10

    run(body())


def test_s12_a_trap_while_waits_are_queued_resets_them(make_sink):
    async def body():
        sink, _ = make_sink()
        waits = [sink.wait(f"q{i}", 30) for i in range(50)]
        sink.inject_trap()
        assert sink.waiter_count() == 0
        assert await asyncio.gather(*waits) == [RESET] * 50
        assert sink.stats().resets == 1

    run(body())


def test_s19_no_config_value_raises_anything_untyped(make_sink):
    import math

    bad = [
        ("max_waiters", -1), ("max_waiters", 1 << 32), ("max_frame_bytes", 1.5),
        ("verdict_cache_capacity", "10"), ("max_memory_bytes", 0), ("max_memory_bytes", 1 << 70),
        ("call_budget", math.inf), ("call_budget", math.nan), ("call_budget", 0), ("call_budget", -1),
        ("verdict_cache_ttl", "60"),
    ]
    for field, value in bad:
        with pytest.raises(SinkError) as refused:
            make_sink(SinkConfig(**{field: value}))
        assert refused.value.kind == "invalid-config" and field in refused.value.detail, (field, value)

    async def body():
        # Extreme but meaningful values run: saturated, never an error.
        sink, clock = make_sink(
            SinkConfig(call_budget=1e300, verdict_cache_ttl=math.inf, max_timeout=math.inf, max_waiters=(1 << 32) - 1)
        )
        wait = sink.wait("req-1", 3600)
        assert sink.deliver("req-1", Decision.APPROVED) == 1
        assert await wait == APPROVED
        clock.advance(1e9)
        assert await sink.wait("req-1", 1) == APPROVED, "remembered for as long as a u64 of ns"

    run(body())


def test_s19_no_duration_or_decision_value_raises_anything_untyped(make_sink):
    import math

    async def body():
        sink, clock = make_sink(SinkConfig(max_timeout=60, verdict_cache_ttl=math.nan))
        forever = sink.wait("inf", math.inf)  # capped at max_timeout (S11)
        never = sink.wait("nan", math.nan)  # no time at all: times out at once
        clock.advance(0)
        assert await never == TIMED_OUT
        clock.advance(60)
        assert await forever == TIMED_OUT
        with pytest.raises(SinkError) as e:
            sink.deliver("x", 7)
        assert e.value == SinkError("unknown-decision", 7)
        sink.on_approval_resolved("x", 7)  # logged, never raised

    run(body())


def test_s19_a_source_backoff_is_clamped_never_infinite():
    import math

    from approval_sink._sources import MAX_BACKOFF, Backoff

    async def body(initial, maximum):
        backoff = Backoff(initial, maximum)
        slept = []

        async def fake_sleep(seconds):
            slept.append(seconds)

        real_sleep, asyncio.sleep = asyncio.sleep, fake_sleep
        try:
            for _ in range(40):
                await backoff.sleep()
        finally:
            asyncio.sleep = real_sleep
        return slept

    for initial, maximum in [(math.inf, math.inf), (math.nan, math.nan), (1e300, 5), (-1, math.inf), (0.1, math.nan)]:
        slept = asyncio.run(body(initial, maximum))
        assert all(0.0005 <= s <= MAX_BACKOFF for s in slept), (initial, maximum, slept[:3])
        if initial == math.inf:
            # The 1 h ceiling, jittered into its upper half: the source retries.
            assert min(slept) >= MAX_BACKOFF / 2, slept[:3]
