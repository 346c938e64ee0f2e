"""The semantics S1-S13, S15, S16 and S18-S20 of SPEC.md through the
Python host and the real component, on a virtual clock."""

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


def test_s1_a_wait_is_registered_before_it_is_awaited(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        assert sink.waiter_count() == 1
        assert sink.deliver("req-1", Decision.APPROVED) == 1
        assert await wait == APPROVED

    run(body())


def test_s1_wait_for_approval_registers_at_the_call(make_sink):
    async def body():
        sink, _ = make_sink()
        decision = sink.wait_for_approval("req-1", 30)
        sink.on_approval_resolved("req-1", Decision.DENIED)
        assert await decision == Decision.DENIED

    run(body())


def test_s2_a_verdict_resolves_and_removes_its_waiters(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        assert sink.deliver("req-1", Decision.DENIED) == 1
        assert await wait == DENIED
        assert sink.waiter_count() == 0
        assert sink.stats().waiters == 0

    run(body())


def test_s3_a_timeout_is_pending_never_denied(make_sink):
    async def body():
        sink, clock = make_sink()
        detailed = sink.wait("req-1", 5)
        plain = sink.wait_for_approval("req-2", 5)
        clock.advance(5)
        assert await detailed == TIMED_OUT
        assert await plain == Decision.PENDING
        assert sink.stats().timed_out == 2

    run(body())


def test_s3_a_real_clock_times_out_too():
    async def body():
        sink = ApprovalSink()
        assert await sink.wait_for_approval("req-1", 0.05) == Decision.PENDING

    run(body())


def test_s4_an_early_verdict_settles_every_later_wait(make_sink):
    async def body():
        sink, _ = make_sink()
        assert sink.deliver("req-1", Decision.APPROVED) == 0
        for _ in range(2):
            assert await sink.wait("req-1", 30) == APPROVED
        s = sink.stats()
        assert (s.early_hits, s.cached_verdicts) == (2, 1)

    run(body())


def test_s4_memory_ttl_and_capacity(make_sink):
    async def body():
        sink, clock = make_sink(SinkConfig(verdict_cache_capacity=2, verdict_cache_ttl=10))
        for rid, d in (("a", Decision.APPROVED), ("b", Decision.DENIED), ("c", Decision.DENIED)):
            sink.deliver(rid, d)
        assert sink.stats().evictions == 1
        assert await sink.wait("c", 1) == DENIED
        evicted = sink.wait("a", 1)
        clock.advance(11)
        assert await evicted == TIMED_OUT, "the oldest was evicted"
        stale = sink.wait("b", 1)
        clock.advance(1)
        assert await stale == TIMED_OUT, "past its TTL"

    run(body())


def test_s5_every_waiter_on_an_id_gets_the_verdict(make_sink):
    async def body():
        sink, _ = make_sink()
        waits = [sink.wait("shared", 30) for _ in range(5)]
        assert sink.deliver("shared", Decision.APPROVED) == 5
        assert await asyncio.gather(*waits) == [APPROVED] * 5

    run(body())


def test_s6_a_timeout_removes_only_its_own_waiter(make_sink):
    async def body():
        sink, clock = make_sink()
        short = sink.wait("id", 1)
        long = sink.wait("id", 60)
        clock.advance(1)
        assert await short == TIMED_OUT
        assert sink.waiter_count() == 1
        assert sink.deliver("id", Decision.APPROVED) == 1
        assert await long == APPROVED

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


def test_s8_malformed_frames_are_counted_and_spare_others(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        with pytest.raises(SinkError) as e:
            sink.push_frame(b"\xff\xff\xff")
        assert e.value.kind == "malformed-frame"
        sink.push_frame(verdict_event(0, "req-1", 1))
        assert await wait == APPROVED
        assert sink.stats().malformed == 1

    run(body())


def test_s9_sequenced_duplicates_are_ignored_and_counted(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        sink.ingest_bytes(stream(verdict_event(7, "x", 1)))
        report = sink.ingest_bytes(stream(verdict_event(7, "req-1", 2)))
        assert report.duplicates == 1
        assert sink.waiter_count() == 1
        sink.ingest_bytes(stream(verdict_event(0, "req-1", 1)))
        assert await wait == APPROVED, "seq 0 is never a duplicate"
        s = sink.stats()
        assert (s.duplicates, s.last_seq) == (1, 7)
        assert sink.resume_point() == (0, 7)

    run(body())


def test_s9_frames_split_across_chunks(make_sink):
    async def body():
        sink, _ = make_sink()
        waits = [sink.wait(f"r{i}", 30) for i in range(3)]
        data = stream(*(verdict_event(i + 1, f"r{i}", 1) for i in range(3)))
        for i in range(len(data)):
            sink.ingest_bytes(data[i : i + 1])
        assert await asyncio.gather(*waits) == [APPROVED] * 3

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


def test_s11_a_huge_timeout_is_capped_not_forever(make_sink):
    async def body():
        sink, clock = make_sink(SinkConfig(max_timeout=3600))
        wait = sink.wait("req-1", 1e30)
        clock.advance(3599)
        assert sink.waiter_count() == 1
        clock.advance(1)
        assert await wait == TIMED_OUT

    run(body())


def test_s11_the_deadline_counts_from_the_call_not_the_flush(make_sink):
    async def body():
        sink, clock = make_sink()
        wait = sink.wait("req-1", 10)
        clock.advance(6)
        assert sink.waiter_count() == 1  # flushed 6 s after the call
        clock.advance(4)
        assert await wait == TIMED_OUT

    run(body())


def test_s13_bad_request_ids_get_typed_errors_and_spare_others(make_sink):
    async def body():
        sink, _ = make_sink()
        ok = sink.wait("ok", 30)
        with pytest.raises(SinkError) as empty:
            await sink.wait("", 1)
        assert empty.value.kind == "request-id-empty"
        with pytest.raises(SinkError) as long:
            await sink.wait("x" * 257, 1)
        assert long.value == SinkError("request-id-too-long", 257)
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


def test_s13_max_waiters_is_a_typed_error(make_sink):
    async def body():
        sink, _ = make_sink(SinkConfig(max_waiters=2))
        waits = [sink.wait(f"r{i}", 30) for i in range(3)]
        assert sink.waiter_count() == 2
        with pytest.raises(SinkError) as e:
            await waits[2]
        assert e.value == SinkError("too-many-waiters", 2)

    run(body())


def test_s15_a_verdict_is_final_and_the_opposite_is_a_counted_conflict(make_sink):
    async def body():
        sink, _ = make_sink()
        wait = sink.wait("req-1", 30)
        assert sink.deliver("req-1", Decision.DENIED) == 1
        assert await wait == DENIED
        with pytest.raises(SinkError) as e:
            sink.deliver("req-1", Decision.APPROVED)
        assert e.value.kind == "conflicting-verdict"
        report = sink.ingest_bytes(stream(verdict_event(1, "req-1", 1)))
        assert report.errors[0].kind == "conflicting-verdict"
        assert report.last_seq == 0, "a rejected frame never moves last_seq"
        assert sink.deliver("req-1", Decision.DENIED) == 0, "a repeat"
        assert await sink.wait("req-1", 30) == DENIED
        assert sink.stats().conflicts == 2

    run(body())


def test_s16_an_event_of_another_log_opens_a_new_window(make_sink):
    async def body():
        sink, _ = make_sink()
        sink.ingest_bytes(stream(*(verdict_event(s, f"old-{s}", 1, log_id=11) for s in range(1, 6))))
        wait = sink.wait("fresh-1", 30)
        report = sink.ingest_bytes(stream(verdict_event(1, "fresh-1", 1, log_id=22)))
        assert (report.events, report.duplicates) == (1, 0)
        assert await wait == APPROVED
        s = sink.stats()
        assert (s.log_id, s.last_seq, s.log_changes) == (22, 1, 1)

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


def test_s12_a_trap_resets_and_outstanding_waits_end_pending(make_sink):
    async def body():
        sink, _ = make_sink()
        sink.deliver("decided-before", Decision.DENIED)
        sink.ingest_bytes(stream(*(verdict_event(s, f"s{s}", 1) for s in range(1, 4))))
        detailed = sink.wait("req-1", 30)
        plain = sink.wait_for_approval("req-2", 30)
        assert sink.waiter_count() == 2
        sink.inject_trap()
        with pytest.raises(GuestFault):
            sink.deliver("req-1", Decision.APPROVED)
        assert await detailed == RESET
        assert await plain == Decision.PENDING, "a reset is never a denial"
        s = sink.stats()
        assert (s.traps, s.waiters, s.last_seq) == (1, 0, 3), "the resume point carries over"
        # S18: what the old instance remembered stays final.
        assert await sink.wait("decided-before", 30) == DENIED
        assert await sink.wait("s2", 30) == APPROVED
        with pytest.raises(SinkError) as e:
            sink.deliver("decided-before", Decision.APPROVED)
        assert e.value.kind == "conflicting-verdict"
        report = sink.ingest_bytes(stream(verdict_event(3, "s3", 1)))
        assert report.duplicates == 1
        after = sink.wait("after", 30)
        assert sink.deliver("after", Decision.APPROVED) == 1
        assert await after == APPROVED

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
        assert sink._journal_bytes <= 2 * 10 * (13 + 16) + 200
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
        assert sink.stats().traps == 1

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
