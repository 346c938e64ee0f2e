"""End to end through the Rust gateway binary: the Python sink subscribes
over gRPC (`approval_sink.grpc`), `approval-sink resolve` decides. Needs the
binary in `$APPROVAL_SINK_BIN` (the harness builds it)."""

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import run

from approval_sink import APPROVED, TIMED_OUT, ApprovalSink, Decision, SinkConfig, SinkError, TrustedKey
from approval_sink.grpc import GrpcSource, pump

BIN = os.environ.get("APPROVAL_SINK_BIN")


def binary() -> str:
    if not BIN:
        pytest.fail("set APPROVAL_SINK_BIN to the approval-sink binary (tests/tests/python.rs does)")
    return BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`approval-sink gateway` on a loopback port; stopped on exit. In
    memory unless `extra` names a `--data-dir`, and `--insecure-dev` (no
    tokens: for tests that are not about auth) unless it gives the token
    files; `exactly` passes `extra` alone. `cwd` and `env` are the
    process's."""

    def __init__(self, port: int, *extra: str, exactly: bool = False, cwd=None, env=None) -> None:
        self.port = port
        self.extra = list(extra)
        if not exactly:
            if "--data-dir" not in extra:
                self.extra.append("--in-memory")
            if "--review-token-file" not in extra:
                self.extra.append("--insecure-dev")
        self.cwd = cwd
        self.env = env
        self.proc = None

    def __enter__(self) -> "Gateway":
        for _ in range(100):
            self.proc = subprocess.Popen(
                [binary(), "gateway", "--listen", f"127.0.0.1:{self.port}", *self.extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=self.cwd,
                env=self.env,
            )
            line = self.proc.stdout.readline()
            if "gateway listening" in line:
                return self
            self.stop()  # the port is still being released: retry
        raise RuntimeError(f"the gateway never listened on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __exit__(self, *exc) -> None:
        self.stop()


async def resolve(port: int, request_id: str, *extra: str, scheme: str = "http") -> str:
    """`approval-sink resolve ... --approve` against the gateway on `port`."""
    proc = await asyncio.create_subprocess_exec(
        binary(), "resolve", "--gateway", f"{scheme}://127.0.0.1:{port}",
        "--request-id", request_id, "--approve", *extra,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    return out.decode()


async def until(predicate, what: str) -> None:
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_a_verdict_from_the_rust_gateway_reaches_a_python_wait():
    async def body():
        port = free_port()
        with Gateway(port):
            sink = ApprovalSink()
            source = GrpcSource(f"127.0.0.1:{port}")
            task = pump(sink, source)
            decision = sink.wait_for_approval("req-1", 30)
            await until(lambda: source.connects == 1, "connected")
            await resolve(port, "req-1")
            assert await asyncio.wait_for(decision, 30) == Decision.APPROVED
            task.cancel()

    run(body())


def test_a_wait_survives_a_gateway_restarted_with_a_fresh_log():
    async def body():
        port = free_port()
        sink = ApprovalSink()
        source = GrpcSource(f"127.0.0.1:{port}", initial_backoff=0.05, max_backoff=0.2)
        with Gateway(port) as gateway:
            for i in range(1, 6):
                await resolve(port, f"old-{i}")
            task = pump(sink, source)
            await until(lambda: sink.resume_point()[1] == 5, "the backlog applied")
            old_log = sink.resume_point()[0]
            gateway.stop()
            wait = sink.wait_for_approval("fresh-1", 60)
            with Gateway(port):
                await until(lambda: source.connects >= 2, "reconnected")
                published = await resolve(port, "fresh-1")
                assert "(seq 1)" in published, published
                assert await asyncio.wait_for(wait, 60) == Decision.APPROVED
                s = sink.stats()
                assert (s.log_changes, s.last_seq) == (1, 1)
                assert s.log_id != old_log
            task.cancel()

    run(body())


def test_an_event_over_the_frame_limit_is_skipped_before_the_guest():
    async def body():
        port = free_port()
        with Gateway(port):
            # Every real event is over 16 bytes: each one must be skipped
            # and counted by the source, never lowered into the guest.
            sink = ApprovalSink(SinkConfig(max_frame_bytes=16))
            source = GrpcSource(f"127.0.0.1:{port}")
            task = pump(sink, source)
            decision = sink.wait_for_approval("req-1", 1)
            await until(lambda: source.connects == 1, "connected")
            await resolve(port, "req-1")
            await until(lambda: source.oversized == 1, "skipped")
            assert await decision == Decision.PENDING, "unread, so never approved"
            s = sink.stats()
            assert (s.malformed, s.delivered, s.last_seq, s.oversized_frames) == (0, 0, 0, 1)
            task.cancel()

    run(body())


def test_a_signed_verdict_is_applied_and_an_unsigned_one_is_not(tmp_path):
    async def body():
        keygen = await asyncio.create_subprocess_exec(
            binary(), "keygen", "--id", "alice", "--dir", str(tmp_path), stdout=asyncio.subprocess.DEVNULL
        )
        assert await keygen.wait() == 0
        sink = ApprovalSink(SinkConfig(trusted_keys=(TrustedKey.from_file(tmp_path / "alice.pub"),)))
        port = free_port()
        with Gateway(port):
            source = GrpcSource(f"127.0.0.1:{port}")
            task = pump(sink, source)
            signed = sink.wait("send-email", 30)
            forged = sink.wait("wire-money", 2)
            await until(lambda: source.connects == 1, "connected")
            # Anyone who reaches the gateway can publish; only a trusted
            # reviewer's signature makes a verdict count.
            await resolve(port, "wire-money")
            await resolve(port, "send-email", "--signing-key", str(tmp_path / "alice.key"))
            outcome = await asyncio.wait_for(signed, 30)
            assert outcome == APPROVED
            by = outcome.decided_by
            assert (by.decision, by.reviewer, by.key_id) == (Decision.APPROVED, "alice", "alice")
            assert by.resolved_at_unix_ms and by.resolved_at_unix_ms > 1_600_000_000_000
            assert await forged == TIMED_OUT
            s = sink.stats()
            assert (s.unauthenticated, s.delivered) == (1, 1)
            task.cancel()

    run(body())


def test_one_source_per_sink():
    async def body():
        sink = ApprovalSink()
        first = pump(sink, GrpcSource(f"127.0.0.1:{free_port()}", initial_backoff=0.01))
        # One stream decoder and one resume point per sink: refused at once.
        with pytest.raises(SinkError) as refused:
            pump(sink, GrpcSource("127.0.0.1:1"))
        assert refused.value.kind == "invalid-config"
        with pytest.raises(SinkError):
            await GrpcSource("127.0.0.1:1").run(sink)
        # A pump cancelled before it ever ran lets go as well.
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        never_ran = pump(sink, GrpcSource("127.0.0.1:1"))
        never_ran.cancel()
        await asyncio.gather(never_ran, return_exceptions=True)
        again = pump(sink, GrpcSource(f"127.0.0.1:{free_port()}"))
        again.cancel()
        await asyncio.gather(again, return_exceptions=True)

    run(body())


def tls_dir():
    path = os.environ.get("APPROVAL_TLS_DIR")
    if not path:
        pytest.fail("set APPROVAL_TLS_DIR to the test PKI (tests/tests/python.rs writes it)")
    return Path(path)


def secured_gateway(port: int, tmp_path, mtls: bool = False) -> Gateway:
    """A gateway on TLS with a subscriber and a reviewer token."""
    pki = tls_dir()
    (tmp_path / "sub.tok").write_text("subscriber-s3cret-0123456789\n")
    (tmp_path / "rev.tok").write_text("reviewer-s3cret-0123456789\n")
    extra = [
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--subscribe-token-file", str(tmp_path / "sub.tok"),
        "--review-token-file", str(tmp_path / "rev.tok"),
    ]
    if mtls:
        extra += ["--client-ca", str(pki / "ca.pem")]
    return Gateway(port, *extra)


async def resolve_securely(port: int, tmp_path, request_id: str, mtls: bool = False) -> None:
    pki = tls_dir()
    extra = ["--ca", str(pki / "ca.pem"), "--token-file", str(tmp_path / "rev.tok")]
    if mtls:
        extra += ["--client-cert", str(pki / "client.pem"), "--client-key", str(pki / "client.key")]
    await resolve(port, request_id, *extra, scheme="https")


def test_tls_and_a_subscriber_token_are_required_and_a_refused_agent_is_never_decided(tmp_path):
    async def body():
        port = free_port()
        roots = (tls_dir() / "ca.pem").read_bytes()
        with secured_gateway(port, tmp_path):
            tokenless_sink = ApprovalSink()
            tokenless = GrpcSource(f"127.0.0.1:{port}", root_certificates=roots, initial_backoff=0.05)
            untrusting_sink = ApprovalSink()
            untrusting = GrpcSource(f"127.0.0.1:{port}", token="subscriber-s3cret-0123456789", initial_backoff=0.05)
            tasks = [pump(tokenless_sink, tokenless), pump(untrusting_sink, untrusting)]
            waits = [tokenless_sink.wait("req-1", 3600), untrusting_sink.wait("req-1", 3600)]
            sink = ApprovalSink()
            source = GrpcSource(f"127.0.0.1:{port}", root_certificates=roots, token="subscriber-s3cret-0123456789")
            tasks.append(pump(sink, source))
            served = sink.wait("req-1", 30)
            await resolve_securely(port, tmp_path, "req-1")
            assert await asyncio.wait_for(served, 30) == APPROVED
            await until(lambda: tokenless.refused > 0 and untrusting.failures > 0, "both refused")
            assert "UNAUTHENTICATED" in tokenless.last_error, tokenless.last_error
            assert (tokenless.connects, untrusting.connects, source.connects) == (0, 0, 1)
            # Neither refused agent was decided by anything.
            assert not any(w.done() for w in waits)
            assert (tokenless_sink.waiter_count(), untrusting_sink.waiter_count()) == (1, 1)
            for task in tasks:
                task.cancel()

    run(body())


def test_a_gateway_requiring_client_certificates_serves_only_those(tmp_path):
    async def body():
        port = free_port()
        pki = tls_dir()
        roots = (pki / "ca.pem").read_bytes()
        with secured_gateway(port, tmp_path, mtls=True):
            anonymous_sink = ApprovalSink()
            anonymous = GrpcSource(
                f"127.0.0.1:{port}", root_certificates=roots, token="subscriber-s3cret-0123456789", initial_backoff=0.05
            )
            sink = ApprovalSink()
            source = GrpcSource(
                f"127.0.0.1:{port}", root_certificates=roots, token="subscriber-s3cret-0123456789",
                certificate_chain=(pki / "client.pem").read_bytes(), private_key=(pki / "client.key").read_bytes(),
            )
            tasks = [pump(anonymous_sink, anonymous), pump(sink, source)]
            unserved, served = anonymous_sink.wait("req-1", 3600), sink.wait("req-1", 30)
            await resolve_securely(port, tmp_path, "req-1", mtls=True)
            assert await asyncio.wait_for(served, 30) == APPROVED
            await until(lambda: anonymous.failures > 0, "the anonymous client refused")
            assert anonymous.connects == 0 and not unserved.done()
            for task in tasks:
                task.cancel()

    run(body())


def test_a_half_open_gateway_is_given_up_and_retried():
    async def body():
        # Accepts TCP connections and never says a word.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        try:
            sink = ApprovalSink()
            source = GrpcSource(f"127.0.0.1:{port}", idle_timeout=0.5, initial_backoff=0.05, max_backoff=0.1)
            wait = sink.wait_for_approval("req-1", 1)
            task = pump(sink, source)
            await until(lambda: source.failures >= 2, "given up twice")
            assert source.connects == 0
            assert source.last_error == "no answer within 0.5 s", source.last_error
            assert await wait == Decision.PENDING, "never decided by a gateway that said nothing"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            silent.close()

    run(body())


def test_python_cryptography_reads_a_keygen_key(tmp_path):
    """`keygen`'s key is PKCS#8 v1, as `openssl genpkey -algorithm ed25519`
    writes it: Python's `cryptography` loads it (it refused the v2 form)
    and finds the public key of the `.pub` line."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    subprocess.run([binary(), "keygen", "--id", "alice", "--dir", str(tmp_path)], check=True, capture_output=True)
    key = load_pem_private_key((tmp_path / "alice.key").read_bytes(), password=None)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert TrustedKey.from_file(tmp_path / "alice.pub").public_key == raw


def test_a_token_never_goes_to_a_remote_gateway_in_clear():
    """The Rust clients' rule (SPEC.md §8): a bearer token without TLS only
    to this machine."""
    for remote in ("10.0.0.5:50051", "gateway.example:50051", "[2001:db8::1]:50051"):
        with pytest.raises(SinkError) as refused:
            GrpcSource(remote, token="subscriber-s3cret-0123456789")
        assert refused.value.kind == "invalid-config"
        GrpcSource(remote)  # no token: nothing to leak
        GrpcSource(remote, token="subscriber-s3cret-0123456789", root_certificates=b"pem")
    for local in ("127.0.0.1:50051", "localhost:50051", "[::1]:50051"):
        GrpcSource(local, token="subscriber-s3cret-0123456789")
