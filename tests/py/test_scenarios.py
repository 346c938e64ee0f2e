"""The conformance scenarios of `tests/scenarios/` (SPEC.md §12) through the
Python host: each file is replayed against a sink on a virtual clock, and
every expectation in it must hold. The Rust (`tests/tests/scenarios.rs`) and
JavaScript (`tests/js/test/scenarios.test.mjs`) hosts replay the same files.

A scenario that needs a capability this host lacks fails, unless it is
named in EXCEPTIONS with the reason (this host has none)."""

import asyncio
import json
import math
from pathlib import Path

import pytest
from conftest import run
from frames import invalidation_event, stream, verdict_event

from approval_sink import ApprovalSink, Decision, Ending, ManualClock, SinkConfig, SinkError, TrustedKey

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.json"))

#: What this host can run beyond the basic operations.
CAPABILITIES = {"trap"}

#: Scenarios this host does not run, each with the reason.
EXCEPTIONS = {}


def vectors(name):
    return json.loads((ROOT / "vectors" / name).read_text())


def seconds(value):
    return math.inf if value == "max" else int(value) / 1000


def event_bytes(e):
    if "hex" in e:
        return bytes.fromhex(e["hex"])
    seq, log_id = int(e.get("seq", 0)), int(e.get("log_id", 0))
    if "verdict" in e:
        v = e["verdict"]
        return verdict_event(
            seq,
            v["id"],
            v["decision"],
            log_id,
            reviewer=v.get("reviewer", ""),
            resolved_at_unix_ms=int(v.get("resolved_at_unix_ms", 0)),
            key_id=v.get("key_id", ""),
            signature=bytes.fromhex(v.get("signature", "")),
        )
    return invalidation_event(seq, e["invalidation"], log_id)


def outcome_json(fut):
    if not fut.done():
        return "waiting"
    if fut.cancelled():
        return "cancelled"
    if fut.exception() is not None:
        return {"error": fut.exception().kind}
    outcome = fut.result()
    if outcome.ending is Ending.DECIDED:
        return outcome.decision.name.lower()
    return outcome.ending.value


def config_of(scenario):
    fields = {}
    for key, value in scenario.get("config", {}).items():
        if key.endswith("_ms"):
            fields[key[: -len("_ms")]] = seconds(value)
        else:
            fields[key] = value
    if "trusted_keys" in scenario:
        key = vectors(scenario["trusted_keys"])["key"]
        fields["trusted_keys"] = (TrustedKey(key["id"], bytes.fromhex(key["public_key"])),)
    return SinkConfig(**fields)


async def replay(name, scenario):
    clock = ManualClock()
    if "build_error" in scenario:
        with pytest.raises(SinkError) as refused:
            ApprovalSink(config_of(scenario), clock=clock)
        assert refused.value.kind == scenario["build_error"], name
        return
    sink = ApprovalSink(config_of(scenario), clock=clock)
    heard = []
    sink.add_invalidation_listener(heard.append)
    waits = {}
    for i, step in enumerate(scenario["steps"]):
        at = f"{name} step {i}"
        if "wait" in step:
            waits[step["wait"]] = sink.wait(step["id"], seconds(step["timeout_ms"]))
        elif "cancel" in step:
            waits[step["cancel"]].cancel()
            await asyncio.sleep(0)  # the future's callbacks queue the cancel
        elif "deliver" in step:
            try:
                woken = sink.deliver(step["deliver"], Decision[step["decision"].upper()])
            except SinkError as e:
                assert step.get("error") == e.kind, f"{at}: {e}"
            else:
                assert "error" not in step, f"{at}: wanted {step['error']}"
                assert woken == step["woken"], at
        elif "frame" in step or "frame_hex" in step or "frame_vector" in step:
            if "frame" in step:
                data = event_bytes(step["frame"])
            elif "frame_hex" in step:
                data = bytes.fromhex(step["frame_hex"])
            else:
                v = step["frame_vector"]
                data = bytes.fromhex(vectors(v["file"])["verdicts"][v["verdict"]]["frame"])
            try:
                sink.push_frame(data)
            except SinkError as e:
                assert step.get("error") == e.kind, f"{at}: {e}"
            else:
                assert "error" not in step, f"{at}: wanted {step['error']}"
        elif "stream" in step:
            data = stream(*(event_bytes(e) for e in step["stream"]))
            if step.get("bytewise"):
                for b in range(len(data)):
                    sink.ingest_bytes(data[b : b + 1])
            else:
                report = sink.ingest_bytes(data)
                want = step["report"]
                got = {"events": report.events, "duplicates": report.duplicates, "rejected": report.rejected}
                if "errors" in want:  # how many errors the report lists (bounded, S20)
                    got["errors"] = len(report.errors)
                assert got == {k: want[k] for k in got}, at
        elif "advance_ms" in step:
            clock.advance(seconds(step["advance_ms"]))
        elif "trap" in step:
            sink.inject_trap()
        elif "outcomes" in step:
            sink.waiter_count()  # sends the queue
            await asyncio.sleep(0)
            for wait, want in step["outcomes"].items():
                assert outcome_json(waits[wait]) == want, f"{at}: wait {wait}"
        elif "stats" in step:
            stats = sink.stats()
            for counter, want in step["stats"].items():
                assert getattr(stats, counter) == int(want), f"{at}: counter {counter}"
        elif "waiters" in step:
            assert sink.waiter_count() == step["waiters"], at
        elif "decided_by" in step:
            by = sink.decided_by(step["decided_by"])
            want = step["is"]
            if want is None:
                assert by is None, at
            else:
                got = {"decision": by.decision.name.lower(), "reviewer": by.reviewer, "key_id": by.key_id}
                assert {k: got[k] for k in want} == want, at
        elif "invalidated" in step:
            assert heard == step["invalidated"], at
        elif "resume_point" in step:
            want = step["resume_point"]
            assert sink.resume_point() == (int(want["log_id"]), int(want["last_seq"])), at
        else:
            raise AssertionError(f"{at}: unknown step {step}")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path):
    scenario = json.loads(path.read_text())
    missing = set(scenario.get("needs", [])) - CAPABILITIES
    if missing:
        assert path.stem in EXCEPTIONS, f"{path.stem} needs {missing}, which this host lacks"
        # Reported as a skip with its reason (tests/tests/python.rs allows
        # no skip while EXCEPTIONS is empty).
        pytest.skip(EXCEPTIONS[path.stem])
    run(replay(path.stem, scenario))


def test_the_scenarios_are_all_there():
    assert len(SCENARIOS) >= 20


def test_every_exception_names_a_scenario_this_host_cannot_run():
    names = {p.stem: p for p in SCENARIOS}
    for name in EXCEPTIONS:
        assert name in names, f"{name} is not a scenario"
        needs = set(json.loads(names[name].read_text()).get("needs", []))
        assert needs - CAPABILITIES, f"{name} runs here: drop the exception"
