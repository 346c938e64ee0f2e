"""``NatsSource``: the NATS JetStream log of many machines (SPEC.md
§5.4) as an event source, with durable waits, over ``nats-py``.

The log, as the Rust host stores and reads it (the two interoperate):

* One stream (default ``APPROVALS``) over ``approvals.v1.>``: verdicts on
  ``approvals.v1.resolved.<id>``, invalidations on
  ``approvals.v1.invalidated.all`` and ``approvals.v1.invalidated.agent.<agent>``
  (``<id>``: the base64url of the UTF-8 id, no padding).
* A stored message is an encoded ``InvalidationEvent`` without ``seq`` and
  ``log_id``; this source appends ``seq`` (field 1, the stream sequence) and
  ``log_id`` (field 4) to the raw bytes. Protobuf keeps the last value of a
  scalar field, so nothing here decodes: the guest stays the only parser.
* The log id (S16) is the first 8 bytes, big-endian, of SHA-256 over
  ``approvals.v1.log``, a zero byte, the stream's name, a zero byte and its
  creation time in Unix nanoseconds as decimal text; never 0. The creation
  time is read from the raw stream info (nats-py's parsed ``datetime``
  keeps only microseconds), so every reader of a stream, in Python or Rust,
  computes the same id.

Behaviour, as the Rust ``NatsSource``:

* Each open binds the stream (creating it when missing: file storage, a
  two-minute duplicate window, direct gets), reads its log id, and follows
  it with an ordered push consumer: from ``last_seq + 1`` when the sink's
  resume point is of this log, else from ``verdict_cache_ttl`` ago (older
  verdicts reach new waits through lookups). nats-py's ordered consumer
  recreates itself after a gap or a reconnect; every ``LOG_CHECK`` seconds
  the stream's identity is checked, and a replaced or deleted stream ends
  the subscription, which reopens in the new log.
* Messages that arrive together go to the guest in one ``ingest-frames``
  call. A message whose frame would be over the sink's frame limit is
  skipped and counted (``oversized``) before it is copied into the guest.
* Durable waits: each new wait looks up the first message on its id's
  subject and hands it to the guest with ``seq = 0`` appended (unsequenced,
  so it never moves ``last_seq``): an agent host restarted while a verdict
  was published gets it.

Needs the ``nats`` extra (``pip install './host/python[nats]'``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import logging
import re
import ssl
import struct
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Union

import nats
from nats.js import api
from nats.js.errors import NotFoundError

from ._sources import DEFAULT_MAX_BACKOFF, INITIAL_BACKOFF, Backoff, FrameBatch, start_pump
from ._wire import varint
from .sink import ApprovalSink
from .types import SinkError

log = logging.getLogger("approval_sink.nats")

DEFAULT_STREAM = "APPROVALS"
ALL_SUBJECTS = "approvals.v1.>"
RESOLVED_SUBJECTS = "approvals.v1.resolved.>"
INVALIDATED_ALL = "approvals.v1.invalidated.all"

LOG_CHECK = 2.0
"""Seconds between checks that the stream is still the same log."""

CONNECT_TIMEOUT = 10.0
"""Seconds connecting (and each JetStream request) may take by default."""

APPENDED_MAX = 1 + 10 + 1 + 8
"""The most bytes appended to a stored message (``seq`` and ``log_id``)."""

# JetStream's "stream not found" error code.
_STREAM_NOT_FOUND = 10059


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def resolved_subject(request_id: str) -> str:
    """The subject of ``request_id``'s verdict."""
    return f"approvals.v1.resolved.{_token(request_id)}"


def invalidated_subject(agent_id: str) -> str:
    """The subject of a policy invalidation for ``agent_id`` (empty: all)."""
    return f"approvals.v1.invalidated.agent.{_token(agent_id)}" if agent_id else INVALIDATED_ALL


def filter_subjects(agent_id: str) -> List[str]:
    """What a subscriber for ``agent_id`` reads: every verdict, and the
    invalidations for every agent and its own (all of them when empty)."""
    if not agent_id:
        return [ALL_SUBJECTS]
    return [RESOLVED_SUBJECTS, INVALIDATED_ALL, invalidated_subject(agent_id)]


def log_id_of(name: str, created_unix_ns: int) -> int:
    """The log id (S16) of the stream ``name`` created at that time."""
    digest = hashlib.sha256(
        b"approvals.v1.log\0" + name.encode() + b"\0" + str(created_unix_ns).encode()
    ).digest()
    return max(1, int.from_bytes(digest[:8], "big"))


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def rfc3339_unix_ns(text: str) -> int:
    """An RFC 3339 time (as nats-server writes it, nanoseconds included) as
    Unix nanoseconds, exactly."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    offset = "+00:00" if m[3] == "Z" else m[3]
    base = datetime.datetime.fromisoformat(m[1] + offset)
    seconds = (base - _EPOCH) // datetime.timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((m[2] or "0")[:9].ljust(9, "0"))


def frame(payload: bytes, seq: int, log_id: int) -> bytes:
    """A stored message as a guest frame body: ``seq`` and ``log_id``
    appended."""
    return payload + b"\x08" + varint(seq) + b"\x21" + struct.pack("<Q", log_id)


def unsequenced_frame(payload: bytes) -> bytes:
    """A stored message as an unsequenced frame body (``seq`` = 0
    appended): a lookup's verdict, which never moves the resume point."""
    return payload + b"\x08\x00"


def _log_id(info: Dict[str, Any]) -> int:
    """The log id of a raw stream info."""
    return log_id_of(info["config"]["name"], rfc3339_unix_ns(info["created"]))


class _LogReplaced(Exception):
    """The stream was deleted or created again: reopen in the new log."""


class NatsSource:
    """Follows the JetStream log into ``sink`` until the task running
    :meth:`run` is cancelled.

    ``servers``: NATS URLs (a list, or comma-separated). ``stream``: the
    stream's name. ``agent_id``: only this agent's invalidations (and every
    agent's); verdicts always arrive. ``token``, ``user_credentials`` (a
    ``.creds`` file) and ``ca_file`` (trust this CA and require TLS) are the
    connection's credentials. ``replicas``: when this source creates the
    stream.
    """

    def __init__(
        self,
        servers: Union[str, Sequence[str]],
        *,
        stream: str = DEFAULT_STREAM,
        agent_id: str = "",
        token: Optional[str] = None,
        user_credentials: Optional[str] = None,
        ca_file: Optional[str] = None,
        replicas: int = 1,
        connect_timeout: float = CONNECT_TIMEOUT,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        if isinstance(servers, str):
            servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.servers = list(servers)
        self.stream = stream
        self.agent_id = agent_id
        self.token = token
        self.user_credentials = user_credentials
        self.ca_file = ca_file
        self.replicas = max(1, replicas)
        self.connect_timeout = max(0.1, connect_timeout)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.connects = 0
        """Subscriptions opened so far."""
        self.oversized = 0
        """Messages skipped as over the sink's frame limit."""
        self.lookups = 0
        """Stored verdicts found for new waits (durable waits)."""
        self.log_id = 0
        """The log id of the stream last opened."""
        self._nc: Any = None
        self._connect_lock: Optional[asyncio.Lock] = None
        self._lookups: Set["asyncio.Task[None]"] = set()

    # -- the connection --------------------------------------------------

    async def _connect(self) -> Any:
        """The client, connecting on first use; it reconnects on its own
        (to any server of the list) for as long as it lives."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        # One connection for the subscription and every lookup: a burst of
        # waits before the first connect must not open one each.
        async with self._connect_lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await self._open()
        return self._nc

    async def _open(self) -> Any:
        """A new client with this source's servers and credentials."""
        options: Dict[str, Any] = dict(
            servers=self.servers,
            connect_timeout=self.connect_timeout,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            ping_interval=max(1, int(self.connect_timeout)),
        )
        if self.token:
            options["token"] = self.token
        if self.user_credentials:
            options["user_credentials"] = self.user_credentials
        if self.ca_file:
            options["tls"] = ssl.create_default_context(cafile=self.ca_file)
        return await nats.connect(**options)

    async def _stream_info(self, nc: Any) -> Optional[Dict[str, Any]]:
        """The raw stream info (its ``created`` keeps nanoseconds), or
        ``None`` when there is no such stream."""
        reply = await nc.request(f"$JS.API.STREAM.INFO.{self.stream}", b"", timeout=self.connect_timeout)
        info = json.loads(reply.data)
        error = info.get("error")
        if error:
            if error.get("err_code") == _STREAM_NOT_FOUND:
                return None
            raise RuntimeError(f"stream {self.stream}: {error.get('description', error)}")
        return info

    async def _bind(self, nc: Any) -> int:
        """Binds the stream, creating it when missing; returns its log id."""
        info = await self._stream_info(nc)
        if info is None:
            js = nc.jetstream(timeout=self.connect_timeout)
            try:
                await js.add_stream(
                    api.StreamConfig(
                        name=self.stream,
                        subjects=[ALL_SUBJECTS],
                        storage=api.StorageType.FILE,
                        num_replicas=self.replicas,
                        duplicate_window=120.0,
                        allow_direct=True,
                    )
                )
            except nats.js.errors.BadRequestError:
                pass  # another reader created it first: bind that one
            info = await self._stream_info(nc)
            if info is None:
                raise RuntimeError(f"stream {self.stream} could not be created")
        return _log_id(info)

    # -- following the log -----------------------------------------------

    async def run(self, sink: ApprovalSink) -> None:
        """Feeds the log into ``sink`` and looks up the stored verdict of
        each new wait, reconnecting for ever."""
        sink.attach_source(self, self.lookup_hook(sink))
        backoff = Backoff(self.initial_backoff, self.max_backoff)
        try:
            while True:
                try:
                    await self._follow(sink, backoff)
                except asyncio.CancelledError:
                    raise
                except _LogReplaced as e:
                    log.warning("%s; reopening", e)
                    backoff.reset()
                except Exception as e:  # noqa: BLE001 - every failure reopens
                    log.warning("NATS source failed: %s: %s", type(e).__name__, e)
                await backoff.sleep()
        finally:
            sink.detach_source(self)
            for task in list(self._lookups):
                task.cancel()
            if self._nc is not None and not self._nc.is_closed:
                await self._nc.close()

    async def _follow(self, sink: ApprovalSink, backoff: Backoff) -> None:
        """One subscription, until the log is replaced or the connection
        fails (it ends only by raising); a message resets ``backoff``."""
        nc = await self._connect()
        log_id = await self._bind(nc)
        self.log_id = log_id
        resume_log, last_seq = sink.resume_point()
        subjects = filter_subjects(self.agent_id)
        config = api.ConsumerConfig(filter_subjects=subjects if len(subjects) > 1 else None)
        if resume_log == log_id:
            config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = last_seq + 1
        else:
            # Any TTL a config holds, however large, is a start time (S19).
            ttl = sink.config.verdict_cache_ttl
            now = datetime.datetime.now(datetime.timezone.utc)
            try:
                since = max(_EPOCH, now - datetime.timedelta(seconds=ttl))
            except (OverflowError, ValueError):
                since = _EPOCH
            config.deliver_policy = api.DeliverPolicy.BY_START_TIME
            config.opt_start_time = since
        batch = FrameBatch(sink)

        async def on_message(msg: Any) -> None:
            backoff.reset()
            # The bound before the appended fields, as the Rust source.
            if batch.fits(len(msg.data) + APPENDED_MAX):
                batch.add(frame(msg.data, msg.metadata.sequence.stream, log_id))
            else:
                self.oversized += 1

        js = nc.jetstream(timeout=self.connect_timeout)
        sub = await js.subscribe(
            subjects[0], stream=self.stream, cb=on_message, ordered_consumer=True, config=config,
        )
        self.connects += 1
        log.info("NATS source following %s (log_id=%x) from %s", self.stream, log_id, config.deliver_policy)
        try:
            while True:
                await asyncio.sleep(LOG_CHECK)
                try:
                    info = await self._stream_info(nc)
                except Exception:  # noqa: BLE001 - unreachable proves nothing
                    continue
                if info is None:
                    raise _LogReplaced("the stream was deleted")
                if _log_id(info) != log_id:
                    raise _LogReplaced("the stream was created again: a new log")
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection may be gone
                pass
            batch.flush()

    # -- durable waits ---------------------------------------------------

    def lookup_hook(self, sink: ApprovalSink) -> Callable[[str, "asyncio.Future[Any]"], None]:
        """What ``sink`` calls for each new wait (durable waits): starts
        the lookup of its id's stored verdict."""
        return lambda request_id, wait: self._start_lookup(sink, request_id, wait)

    def _start_lookup(self, sink: ApprovalSink, request_id: str, wait: "asyncio.Future[Any]") -> None:
        task = asyncio.ensure_future(self._lookup(sink, request_id, wait))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _lookup(self, sink: ApprovalSink, request_id: str, wait: "asyncio.Future[Any]") -> None:
        # After the loop's turn: the queued registration has reached the
        # guest, and a wait the verdict memory settled needs no lookup.
        await asyncio.sleep(0)
        if wait.done():
            return
        try:
            nc = await self._connect()
            js = nc.jetstream(timeout=self.connect_timeout)
            stored = await js.get_msg(self.stream, seq=1, subject=resolved_subject(request_id), next=True)
        except NotFoundError:
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the wait goes on without it
            log.warning("lookup of %r failed: %s", request_id, e)
            return
        data = stored.data or b""
        if wait.done() or len(data) + 2 > sink.config.max_frame_bytes:
            return
        self.lookups += 1
        try:
            # seq = 0 (field 1): whatever the stored bytes say, unsequenced.
            sink.push_frame(unsequenced_frame(data))
        except SinkError as e:
            log.warning("stored verdict for %r rejected: %s", request_id, e)


def pump(sink: ApprovalSink, source: NatsSource) -> "asyncio.Task[None]":
    """Runs ``source`` into ``sink`` as a task; cancel it to stop. Raises
    :class:`SinkError` (``invalid-config``) if the sink has a source."""
    return start_pump(sink, source, source.run(sink), source.lookup_hook(sink))
