"""S17 (signed verdicts) and who decided a wait, through the Python host
and the real component. A verdict signed by a trusted key is shown end to
end in `test_grpc.py` (the Rust CLI signs; this host carries no crypto)."""

import base64

import pytest
from conftest import run
from frames import stream, verdict_event

from approval_sink import (
    APPROVED,
    TIMED_OUT,
    DecidedBy,
    Decision,
    Ending,
    SinkConfig,
    SinkError,
    TrustedKey,
)

KEY = TrustedKey("alice", bytes(range(32)))


def trusting(make_sink):
    return make_sink(SinkConfig(trusted_keys=(KEY,)))


def test_s17_unsigned_untrusted_and_forged_verdicts_are_refused_and_counted(make_sink):
    async def body():
        sink, clock = trusting(make_sink)
        wait = sink.wait("send-email", 5)
        forged = [
            verdict_event(1, "send-email", Decision.APPROVED),
            verdict_event(2, "send-email", Decision.APPROVED, key_id="mallory", signature=bytes(64)),
            verdict_event(3, "send-email", Decision.APPROVED, key_id="alice", signature=bytes(64)),
        ]
        kinds = []
        for frame in forged:
            with pytest.raises(SinkError) as refused:
                sink.push_frame(frame)
            kinds.append((refused.value.kind, refused.value.detail))
        assert kinds == [
            ("unauthenticated", "unsigned"),
            ("unauthenticated", "untrusted-key"),
            ("unauthenticated", "bad-signature"),
        ]
        # A direct verdict has no signature: refused while keys are trusted.
        with pytest.raises(SinkError) as refused:
            sink.deliver("send-email", Decision.APPROVED)
        assert (refused.value.kind, refused.value.detail) == ("unauthenticated", "unsigned")
        clock.advance(5)
        # Never a forged APPROVED: the agent's fallback applies.
        assert await wait == TIMED_OUT
        stats = sink.stats()
        assert stats.unauthenticated == 4
        assert stats.delivered == 0 and stats.cached_verdicts == 0

    run(body())


def test_s17_a_long_signed_stream_is_ingested_in_budgeted_pieces(make_sink):
    async def body():
        sink, _ = trusting(make_sink)
        frames = [
            verdict_event(seq, f"req-{seq}", Decision.APPROVED, key_id="alice", signature=bytes(64))
            for seq in range(1, 3001)
        ]
        data = stream(*frames)
        assert len(data) > 200_000  # several pieces under a 1 s budget
        report = sink.ingest_bytes(data)
        assert (report.events, report.rejected) == (0, 3000)
        assert report.fatal is None
        assert len(report.errors) >= 1
        assert sink.stats().unauthenticated == 3000

    run(body())


def test_s17_bad_keys_are_typed_errors():
    for line in ["", "alice ed25519", "alice rsa AAAA", "alice ed25519 !!!", "alice ed25519 " + base64.b64encode(bytes(31)).decode()]:
        with pytest.raises(SinkError) as refused:
            TrustedKey.parse(line)
        assert refused.value.kind == "invalid-config"
    line = "alice ed25519 " + base64.b64encode(bytes(range(32))).decode()
    assert TrustedKey.parse(line + "\n") == KEY


def test_s17_the_guest_refuses_a_key_the_parser_did_not_see(make_sink):
    with pytest.raises(SinkError) as refused:
        make_sink(SinkConfig(trusted_keys=(TrustedKey("alice", bytes(31)),)))
    assert refused.value.kind == "invalid-config"
    with pytest.raises(SinkError) as refused:
        make_sink(SinkConfig(trusted_keys=(KEY, KEY)))
    assert refused.value.kind == "invalid-config"


def test_a_decided_wait_says_who_decided(make_sink):
    async def body():
        sink, _ = make_sink()
        by_event = sink.wait("req-1", 30)
        twice = sink.wait("req-1", 30)
        plain = sink.wait_for_approval("req-1", 30)
        sink.push_frame(
            verdict_event(1, "req-1", Decision.APPROVED, reviewer="bob", resolved_at_unix_ms=1_764_000_000_000)
        )
        outcome = await by_event
        assert outcome == APPROVED
        assert outcome.decided_by == DecidedBy(Decision.APPROVED, "bob", None, 1_764_000_000_000)
        assert (await twice).decided_by == outcome.decided_by
        assert await plain == Decision.APPROVED
        # A direct verdict names nobody; a timeout has no decider.
        direct = sink.wait("req-2", 30)
        sink.deliver("req-2", Decision.DENIED)
        assert (await direct).decided_by == DecidedBy(Decision.DENIED)
        assert sink.decided_by("req-1") == outcome.decided_by
        assert sink.decided_by("never") is None

    run(body())


def test_a_timed_out_wait_has_no_decider(make_sink):
    async def body():
        sink, clock = make_sink()
        wait = sink.wait("req-1", 1)
        clock.advance(1)
        outcome = await wait
        assert outcome.ending is Ending.TIMED_OUT and outcome.decided_by is None

    run(body())
