"""``GrpcSource``: the gateway's invalidation stream over gRPC (``grpc.aio``).

The stream's messages are handed to the guest as raw bytes: no protobuf
code is generated or decoded here (the guest decodes every event, as in the
Rust adapter); messages that arrive in one turn of the event loop go in one
guest call. The subscription asks for ``(log_id, last_seq)`` from the
sink's resume point (S9, S16), so a reconnect neither misses nor re-applies
an event; after an error it reconnects with exponential backoff and jitter.
A bearer token and TLS roots are the trust issue's: the token goes in
``authorization`` metadata, TLS roots verify the gateway.

Needs the ``grpc`` extra (``pip install approval-sink[grpc]``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from typing import Optional, Sequence, Tuple

import grpc

from ._sources import (
    IDLE_TIMEOUT,
    INITIAL_BACKOFF,
    DEFAULT_MAX_BACKOFF,
    MAX_BACKOFF,
    SHORTEST_IDLE_TIMEOUT,
    Backoff,
    FrameBatch,
    start_pump,
)
from ._wire import varint
from .sink import ApprovalSink
from .types import SinkError

log = logging.getLogger("approval_sink.grpc")

SUBSCRIBE = "/assembly.gateway.v1.InvalidationService/Subscribe"

# Well above the sink's frame limit, as the Rust source's default: a message
# over the sink's limit is then skipped and counted by the guest instead of
# ending the stream (and wedging the subscriber on the same event).
MAX_MESSAGE_BYTES = 16 << 20


# Refusals for credentials: retried at the backoff like any failure (a
# token may be rotated), and counted apart so an operator sees them.
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class _Idle(Exception):
    """The gateway accepted the connection but never answered."""


def subscribe_request(agent_id: str, last_seq: int, log_id: int) -> bytes:
    """``SubscribeRequest{agent_id = 1, last_seq_seen = 2, log_id = 3}``."""
    out = b""
    agent = agent_id.encode()
    if agent:
        out += b"\x0a" + varint(len(agent)) + agent
    if last_seq:
        out += b"\x10" + varint(last_seq)
    if log_id:
        out += b"\x19" + struct.pack("<Q", log_id)
    return out


def _identity(b: bytes) -> bytes:
    return b


def _is_local(target: str) -> bool:
    """Whether a ``host:port`` target (IPv6 in brackets) is this machine."""
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 or target.startswith("[") else target
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GrpcSource:
    """Subscribes ``sink`` to a gateway until the task running
    :meth:`run` is cancelled.

    ``target``: ``host:port``. ``token``: the Subscribe bearer token.
    ``root_certificates``: PEM roots; with them the channel uses TLS.
    ``certificate_chain`` and ``private_key``: a client certificate (PEM)
    for a gateway that requires one (mTLS; needs ``root_certificates``).
    ``idle_timeout``: a gateway that does not accept the subscription, or
    a connection that stops answering HTTP/2 keepalive pings, is given up
    within it and reconnected (default 30 s, as the Rust pump).

    Counters, as the Rust pump's stats: ``connects`` (subscriptions the
    gateway accepted), ``failures`` (attempts that ended in an error),
    ``refused`` (of those, refused for credentials: ``UNAUTHENTICATED``,
    ``PERMISSION_DENIED``, or a TLS handshake), ``last_error``.
    """

    def __init__(
        self,
        target: str,
        *,
        agent_id: str = "",
        token: Optional[str] = None,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        if token and root_certificates is None and not _is_local(target):
            # The same rule as the Rust clients (SPEC.md §8): a bearer token
            # never crosses a network in clear.
            raise SinkError(
                "invalid-config",
                f"a bearer token to {target} without TLS would cross the network in clear; "
                "give root_certificates (TLS) or use a loopback address",
            )
        self.target = target
        self.agent_id = agent_id
        self.token = token
        self.root_certificates = root_certificates
        self.certificate_chain = certificate_chain
        self.private_key = private_key
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        # NaN, negative or absurd values clamp (S19): at least 0.1 s, at
        # most a day.
        self.idle_timeout = min(max(idle_timeout, SHORTEST_IDLE_TIMEOUT), MAX_BACKOFF) if idle_timeout == idle_timeout else IDLE_TIMEOUT
        self.connects = 0
        """Subscriptions the gateway accepted so far."""
        self.failures = 0
        """Attempts that ended in an error."""
        self.refused = 0
        """Attempts refused for credentials or TLS."""
        self.last_error: Optional[str] = None
        """The last attempt's error."""
        self.oversized = 0
        """Messages skipped as over the sink's frame limit."""

    def _channel(self) -> grpc.aio.Channel:
        # HTTP/2 keepalive: a connection that went silent (a half-open TCP
        # connection behind a NAT or a dead gateway) fails its call within
        # `idle_timeout` instead of leaving the stream waiting for ever.
        half = max(1, int(self.idle_timeout * 500))
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", half),
            ("grpc.keepalive_timeout_ms", half),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
        if self.root_certificates is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=self.root_certificates,
                private_key=self.private_key,
                certificate_chain=self.certificate_chain,
            )
            return grpc.aio.secure_channel(self.target, creds, options=options)
        return grpc.aio.insecure_channel(self.target, options=options)

    def _metadata(self) -> Sequence[Tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    async def run(self, sink: ApprovalSink) -> None:
        """Feeds the stream into ``sink``, reconnecting for ever."""
        sink.attach_source(self)
        try:
            await self._run(sink)
        finally:
            sink.detach_source(self)

    async def _run(self, sink: ApprovalSink) -> None:
        backoff = Backoff(self.initial_backoff, self.max_backoff)
        while True:
            try:
                async with self._channel() as channel:
                    subscribe = channel.unary_stream(
                        SUBSCRIBE, request_serializer=_identity, response_deserializer=_identity
                    )
                    log_id, last_seq = sink.resume_point()
                    call = subscribe(
                        subscribe_request(self.agent_id, last_seq, log_id),
                        metadata=self._metadata(),
                    )
                    # The gateway's headers: it accepted the subscription.
                    # A refused or failed call ends before any (reading it
                    # below raises its error).
                    try:
                        await asyncio.wait_for(call.initial_metadata(), self.idle_timeout)
                    except asyncio.TimeoutError:
                        call.cancel()
                        raise _Idle(f"no answer within {self.idle_timeout:g} s") from None
                    if not call.done():
                        self.connects += 1
                        log.info("event source connected (log_id=%x, last_seq=%d)", log_id, last_seq)
                    batch = FrameBatch(sink)
                    try:
                        async for frame in call:
                            backoff.reset()
                            if batch.fits(len(frame)):
                                batch.add(frame)
                            else:
                                self.oversized += 1
                    finally:
                        batch.flush()
                log.info("event stream ended; reconnecting")
            except asyncio.CancelledError:
                raise
            except _Idle as e:
                self.failures += 1
                self.last_error = str(e)
                log.warning("event stream failed: %s", self.last_error)
            except grpc.aio.AioRpcError as e:
                self.failures += 1
                self.last_error = f"{e.code().name}: {e.details()}"
                if e.code() in _REFUSED or "handshake" in (e.details() or "").lower():
                    self.refused += 1
                log.warning("event stream failed: %s", self.last_error)
            await backoff.sleep()


def pump(sink: ApprovalSink, source: GrpcSource) -> "asyncio.Task[None]":
    """Runs ``source`` into ``sink`` as a task; cancel it to stop. Raises
    :class:`SinkError` (``invalid-config``) if the sink has a source."""
    return start_pump(sink, source, source.run(sink))
