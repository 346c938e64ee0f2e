"""The golden vectors of `tests/vectors/` (SPEC.md §5, §6), written by the
Rust modules that own each format, checked against every encoder and
decoder of this host: the op buffer it writes, the frames its suite and
its NATS source make, the journal it keeps and restores, the signed
verdicts the guest verifies, and the defaults it holds."""

import json
from pathlib import Path

import pytest
from conftest import run
from frames import invalidation_event, stream, verdict_event

from approval_sink import ApprovalSink, ManualClock, SinkConfig, SinkError, TrustedKey, default_config
from approval_sink import _guest, _sources, grpc, nats
from approval_sink._ops import OpQueue
from approval_sink._registry import EPOCH_TICK, Registry, default_component_path
from approval_sink._journal import JOURNAL_HEADER_BYTES, journal_entry
from approval_sink._wire import invalidation_frame

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def vectors(name: str):
    return json.loads((VECTORS / name).read_text())


def test_the_op_buffer_is_written_as_the_guest_reads_it():
    for case in vectors("ops.json")["cases"]:
        queue = OpQueue()
        for op in case["ops"]:
            rid = op.get("id", "").encode()
            if op["op"] == "register":
                queue.register(int(op["waiter"]), int(op["start_ns"]), int(op["timeout_ns"]), rid)
            elif op["op"] == "cancel":
                queue.cancel(int(op["waiter"]))
            else:
                queue.resolve(rid, op["decision"])
        assert bytes(queue.buf).hex() == case["bytes"], case["name"]


def test_frames_are_encoded_as_prost_encodes_them():
    for case in vectors("frames.json")["events"]:
        event = case["event"]
        seq, log_id = int(case["seq"]), int(case["log_id"])
        if "approval_resolved" in event:
            r = event["approval_resolved"]
            body = verdict_event(
                seq,
                r["request_id"],
                r["decision"],
                log_id,
                reviewer=r["reviewer"],
                resolved_at_unix_ms=int(r["resolved_at_unix_ms"]),
                key_id=r["key_id"],
                signature=bytes.fromhex(r["signature"]),
            )
        else:
            agent = event["policy_invalidated"]["agent_id"]
            body = invalidation_event(seq, agent, log_id)
            if seq == 0 and log_id == 0:
                assert invalidation_frame(agent) == body, "the host's own encoder"
        assert body.hex() == case["body"], case["name"]
        assert stream(body).hex() == case["frame"], case["name"]


def test_nats_subjects_log_ids_and_frames_are_the_rust_hosts():
    v = vectors("nats.json")
    for s in v["subjects"]:
        assert nats.resolved_subject(s["id"]) == s["resolved"]
        assert nats.invalidated_subject(s["id"]) == s["invalidated"]
    for entry in v["log_ids"]:
        assert nats.log_id_of(entry["stream"], int(entry["created_unix_ns"])) == int(entry["log_id"])
    for f in v["frames"]:
        stored = bytes.fromhex(f["stored"])
        body = nats.frame(stored, int(f["seq"]), int(f["log_id"]))
        assert stream(body).hex() == f["frame"]
        assert nats.unsequenced_frame(stored).hex() == f["unsequenced"]


def test_signed_vectors_verify_in_the_guest_and_tampered_ones_do_not():
    v = vectors("signing.json")
    key = TrustedKey(v["key"]["id"], bytes.fromhex(v["key"]["public_key"]))

    async def body():
        sink = ApprovalSink(SinkConfig(trusted_keys=(key,)), clock=ManualClock())
        for case in v["verdicts"]:
            frame = bytes.fromhex(case["frame"])
            tampered = bytearray(frame)
            tampered[-1] ^= 1  # the signature is the frame's last field
            with pytest.raises(SinkError) as refused:
                sink.push_frame(bytes(tampered))
            assert (refused.value.kind, refused.value.detail) == ("unauthenticated", "bad-signature")
            sink.push_frame(frame)
            by = sink.decided_by(case["request_id"])
            assert by is not None and by.key_id == key.id
            assert int(by.decision) == case["decision"]
        assert sink.stats().unauthenticated == len(v["verdicts"])

    run(body())


def test_the_journal_vectors_are_written_and_restored_as_the_guest_does():
    v = vectors("journal.json")
    assert JOURNAL_HEADER_BYTES == v["header_bytes"]
    written = b"".join(journal_entry(e["decision"], int(e["stored_at"]), e["id"].encode()) for e in v["entries"])
    assert written.hex() == v["bytes"]
    config = default_config()
    registry = Registry(default_component_path(), config, lambda: 0, lambda _agent: None)
    restored = registry.restore_verdicts(bytes.fromhex(v["bytes"]))
    # Every entry but the empty id, which no registry can remember.
    assert restored == sum(1 for e in v["entries"] if e["id"])
    for e in v["entries"]:
        if e["id"]:
            by = registry.decided_by(e["id"])
            assert by is not None and int(by.decision) == e["decision"], e["id"]


def test_the_guest_limits_come_from_the_component():
    defaults = default_config()
    assert SinkConfig().max_waiters is None, "unset: the guest's default"
    for name in ("max_waiters", "max_request_id_bytes", "max_frame_bytes", "verdict_cache_capacity"):
        assert isinstance(getattr(defaults, name), int) and getattr(defaults, name) > 0, name
    sink = ApprovalSink(clock=ManualClock())
    assert sink.config == defaults
    assert ApprovalSink(SinkConfig(max_waiters=3), clock=ManualClock()).config.max_waiters == 3


def test_host_defaults_are_the_pinned_ones():
    pinned = vectors("host-defaults.json")
    shared, python = pinned["shared"], pinned["python"]
    config = SinkConfig()
    ms = 1000
    assert config.max_memory_bytes == shared["max_memory_bytes"]
    assert config.call_budget * ms == shared["call_budget_ms"]
    assert EPOCH_TICK * ms == shared["epoch_tick_ms"]
    assert _guest.VERIFY_SHARE_OF_BUDGET == shared["verify_share_of_budget"]
    assert _guest.VERIFY_COST * 1e6 == pytest.approx(shared["verify_cost_us"])
    assert _guest.MIN_SIGNED_FRAME_BYTES == shared["min_signed_frame_bytes"]
    assert _sources.INITIAL_BACKOFF * ms == shared["initial_backoff_ms"]
    assert _sources.DEFAULT_MAX_BACKOFF * ms == shared["max_backoff_ms"]
    assert _sources.SHORTEST_BACKOFF * ms == shared["shortest_backoff_ms"]
    assert _sources.MAX_BACKOFF * ms == shared["longest_backoff_ms"]
    assert _sources.IDLE_TIMEOUT * ms == shared["idle_timeout_ms"]
    assert _sources.SHORTEST_IDLE_TIMEOUT * ms == pytest.approx(shared["shortest_idle_timeout_ms"])
    assert grpc.MAX_MESSAGE_BYTES == shared["transport_max_message_bytes"]
    assert nats.CONNECT_TIMEOUT * ms == shared["nats_connect_timeout_ms"]
    assert nats.LOG_CHECK * ms == shared["nats_log_check_ms"]
    assert _guest.MAX_INGEST_CALL_BYTES == python["ingest_call_bytes"]
