"""The planned call path (`approval_sink._abi`) against wasmtime-py's own
`Func.__call__` on the same calls: the bulk byte lowering and lifting and
the planned record, variant, option and list lifts must read exactly what
wasmtime-py reads."""

import struct
import time

from frames import verdict_event

from approval_sink import ApprovalSink
from approval_sink._abi import Err, self_check
from wasmtime.component import Record, Variant


def plain(value):
    """wasmtime-py's values in the planned path's shapes."""
    if isinstance(value, Record):
        return {k: plain(v) for k, v in value.__dict__.items()}
    if isinstance(value, Variant):
        return Variant(value.tag, plain(value.payload))
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def both(name, *args):
    """The same call on two fresh instances: planned, then stock."""
    planned = ApprovalSink()._guest.registry
    stock = ApprovalSink()._guest.registry
    call = stock._funcs[name]
    ours = planned._call(name, *args)
    theirs = call._func(stock._store, *args)
    call.post_return(stock._store)
    return ours, plain(theirs)


def journal(entries):
    out = b""
    for decision, at, request_id in entries:
        rid = request_id.encode()
        out += struct.pack("<BQI", decision, at, len(rid)) + rid
    return out


def test_self_check_passes_on_the_pinned_wasmtime():
    self_check()


def test_bytes_in_and_out_read_as_wasmtime_py_reads_them():
    # Every byte value in ids, through `restore-verdicts` (bytes in, a
    # count out) and `apply` (bytes in; a record with lists, options,
    # variants and bytes out).
    ids = ["".join(chr(c) for c in range(1, 128)), "é✓", "x" * 200]
    now = time.monotonic_ns()  # the sinks' clock: fresh verdicts, within the TTL
    entries = [(1 + i % 2, now, rid) for i, rid in enumerate(ids)]
    ours, theirs = both("restore-verdicts", journal(entries))
    assert ours == theirs == 3
    # register(waiter 7, start 0, timeout 5 s, "a") and a resolve the guest
    # refuses (decision 9), then a truncated op.
    rid = b"a"
    ops = (
        bytes([1]) + struct.pack("<QQQI", 7, 0, 5_000_000_000, len(rid)) + rid
        + bytes([3, 9]) + struct.pack("<I", len(rid)) + rid
        + bytes([1, 0, 0])
    )
    ours, theirs = both("apply", 0, ops)
    assert ours == theirs
    assert ours["errors"] and ours["batch"]["next-deadline"] == 5_000_000_000
    # Bytes out: the journal of a verdict event (its id holds every
    # printable byte value and multi-byte characters).
    frame = verdict_event(1, ids[0][:100] + "é✓", 2)
    ours, theirs = both("apply-frame", frame)
    mine, stock = ours["batch"]["journal"], theirs["batch"]["journal"]
    # The same entry but for its time (bytes 1-8: each instance's clock).
    assert len(mine) == len(stock) and mine[:1] + mine[9:] == stock[:1] + stock[9:]
    assert mine.endswith((ids[0][:100] + "é✓").encode())
    ours.pop("batch"), theirs.pop("batch")
    assert ours == theirs


def test_an_error_result_is_an_err():
    sink = ApprovalSink()
    refused = sink._guest.registry._call("set-trusted-keys", [])
    assert refused is None
    record = Record()
    record.id = ""
    setattr(record, "public-key", bytes(32))
    refused = sink._guest.registry._call("set-trusted-keys", [record])
    assert isinstance(refused, Err) and refused.value.tag == "invalid-config"
    stats, theirs = both("stats")
    assert stats == theirs
