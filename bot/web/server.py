"""The guarded HTTP server every endpoint of ours runs on: aiohttp's request handling behind a connection guard.

aiohttp alone waits for ever on a connection that sends half a request and accepts connections until the process
runs out of file descriptors. The guard, one per connection, watches the bytes as they arrive (it parses no more
than the end of the headers and `Content-Length`) and:

- drops a connection whose headers are not complete within `header_timeout` (idle ones too), and one whose body is
  not complete within `body_timeout` after its headers;
- refuses a declared body over `max_body_bytes` with 413 before reading it (aiohttp's `client_max_size` catches
  chunked ones);
- keeps at most `max_connections` open (lowered to fit the process's file limit): a new connection over the cap
  takes the place of the oldest one still sending its headers, else of the oldest one still sending its body, else
  of an idle keep-alive one; when every connection is busy with a request, the new one gets 503 and is closed. So a
  flood of idle or half-sent connections cannot keep a real request out, which sends its headers at once: a
  connection whose bytes are already waiting when it is accepted may take the place of any connection still sending
  its headers and is not taken itself until they are read; one with nothing to say yet only takes the place of a
  connection that had `MIN_AGE_TO_EVICT` to send, and is shed otherwise;
- counts every refusal (`Refusals`) instead of logging it, malformed HTTP included (aiohttp would log a traceback).

aiohttp closes keep-alive connections idle for `keepalive_timeout`. Handlers get the body already read (a client
that goes away mid-body costs a counted refusal, not a traceback).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import resource
import socket
import sys
import termios
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.web.refusals import Refusals

if TYPE_CHECKING:
    from storage import Settings

log = logging.getLogger(__name__)

RESERVED_FILES = 64
"""File descriptors kept for everything but incoming connections: the store, RPC and chat API clients, logs."""
SERVERS_PER_PROCESS = 2
"""A process runs at most a chat endpoint (Slack HTTP mode or the Telegram webhook) and the metrics server."""
ACCEPT_BATCH = 16
"""Connections asyncio accepts at a time: each holds a file descriptor until the guard has let it in or shed it."""
LISTEN_BACKLOG = 1024
"""Connections the kernel queues for us (they hold no descriptor of ours): a burst waits there, not refused."""
MIN_AGE_TO_EVICT = 0.1
"""Seconds a connection has to send its first bytes before it may be taken for idle (a real client sends at once)."""
PROBATION = ACCEPT_BATCH
"""Silent newcomers let in over the cap, for `MIN_AGE_TO_EVICT`, when every connection is too young to take."""
MAX_HEAD_BYTES = 32 * 1024
BUSY_GRACE_SECONDS = 1.0
"""A connection whose request was received this recently is never taken for idle (its handler may not have begun)."""

_SHED = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int = 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    max_body_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_connections=settings.http_max_connections,
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            keepalive_timeout=settings.http_keepalive_timeout,
            max_body_bytes=settings.http_max_body_bytes,
        )


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that the servers of one process stay within its file limit (`LimitNOFILE`)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, (soft - RESERVED_FILES) // SERVERS_PER_PROCESS - 2 * ACCEPT_BATCH - PROBATION))


class _Phase(Enum):
    HEAD = "head"  # waiting for (the rest of) a request's headers; also a fresh connection
    BODY = "body"  # headers in, body incomplete
    HANDLED = "handled"  # request received; aiohttp answers and keeps the connection alive


class _Guard:
    """The connections of one server, by phase, oldest first."""

    def __init__(self, limits: HttpLimits, refusals: Refusals) -> None:
        self.limits = limits
        self.cap = connection_cap(limits.max_connections)
        self.refusals = refusals
        self.heads: OrderedDict[_Connection, None] = OrderedDict()
        self.bodies: OrderedDict[_Connection, None] = OrderedDict()
        self.handled: set[_Connection] = set()
        self.arriving: set[_Connection] = set()  # accepted with bytes waiting, not read yet
        self.probation: OrderedDict[_Connection, None] = OrderedDict()  # over the cap, silent so far

    @property
    def open(self) -> int:
        return len(self.heads) + len(self.bodies) + len(self.handled) + len(self.arriving) + len(self.probation)

    def admit(self, sending: bool) -> str:
        """Whether a new connection is let in ("in"), let in over the cap until its first bytes ("probation") or
        refused ("shed")."""
        if self.make_room(sending):
            return "in"
        if sending and not self.probation:
            return "shed"  # every connection is busy with a request
        if self.probation and (sending or len(self.probation) >= PROBATION):
            self.refusals.count("silent over the connection cap, shed")
            next(iter(self.probation)).drop()
        return "in" if sending else "probation"

    def make_room(self, sending: bool) -> bool:
        """Close the least useful connection if the cap is reached; False when none may be closed. A connection that
        is `sending` (its bytes are waiting) may take the place of one that had no time to send yet; one that is not
        may only take the place of one that had (`MIN_AGE_TO_EVICT`)."""
        if self.open - len(self.probation) < self.cap:
            return True
        old = self.loop_time() - (0.0 if sending else MIN_AGE_TO_EVICT)
        for waiting, reason in ((self.heads, "idle or slow headers, evicted"), (self.bodies, "slow body, evicted")):
            oldest = next(iter(waiting), None)
            if oldest is not None and oldest.since <= old:
                self.refusals.count(reason)
                oldest.drop()
                return True
        for connection in self.handled:
            if connection.idle():
                self.refusals.count("idle keep-alive, evicted")
                connection.drop()
                return True
        return False

    @staticmethod
    def loop_time() -> float:
        return asyncio.get_running_loop().time()

    def move(self, connection: _Connection, phase: _Phase | None) -> None:
        connection.since = self.loop_time()
        self.heads.pop(connection, None)
        self.bodies.pop(connection, None)
        self.handled.discard(connection)
        self.arriving.discard(connection)
        self.probation.pop(connection, None)
        if phase is _Phase.HEAD:
            self.heads[connection] = None
        elif phase is _Phase.BODY:
            self.bodies[connection] = None
        elif phase is _Phase.HANDLED:
            self.handled.add(connection)


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard (every event is passed on unchanged)."""

    def __init__(self, inner: Any, guard: _Guard) -> None:
        self.inner = inner
        self.guard = guard
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.connected = False  # aiohttp's protocol has the connection
        self.dropped = False
        self.phase = _Phase.HEAD
        self.head = bytearray()
        self.body_left = 0
        self.chunked_tail = b""
        self.chunked = False
        self.received_at = 0.0
        self.since = 0.0  # when it entered its phase
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio protocol ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sending = _bytes_waiting(transport)
        admitted = self.guard.admit(sending)
        if admitted == "shed":
            self.guard.refusals.count("over the connection cap, shed")
            self.dropped = True
            transport.write(_SHED)
            transport.close()
            return
        if admitted == "probation":
            self._enter(_Phase.HEAD, MIN_AGE_TO_EVICT * 2)
            self.guard.move(self, None)
            self.guard.probation[self] = None
        else:
            self._enter(_Phase.HEAD, self.guard.limits.header_timeout)
        if sending:
            self.guard.move(self, None)
            self.guard.arriving.add(self)
        self.connected = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.dropped or not self._watch(data):
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.dropped:
            return None
        keep_open: bool | None = self.inner.eof_received()
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.guard.move(self, None)
        self.transport = None
        if self.connected:
            self.connected = False
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connected:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.connected:
            self.inner.resume_writing()

    # --- the guard -------------------------------------------------------------------------------------------

    def idle(self) -> bool:
        """Between requests: its last request received a while ago and aiohttp is not handling one."""
        busy = getattr(self.inner, "_current_request", None) is not None
        return not busy and self.loop.time() - self.received_at > BUSY_GRACE_SECONDS

    def drop(self, answer: bytes = b"") -> None:
        transport = self.transport
        if transport is None or self.dropped:
            return
        self.dropped = True
        self._cancel_timer()
        self.guard.move(self, None)
        if answer:
            transport.write(answer)
            transport.close()
        else:
            transport.abort()

    def _watch(self, data: bytes) -> bool:
        """Follow the request boundaries through `data`; False when the connection was dropped."""
        view = memoryview(data)
        while view:
            if self.phase is _Phase.HANDLED:
                self._enter(_Phase.HEAD, self.guard.limits.header_timeout)  # the next request begins
            if self.phase is _Phase.HEAD:
                view = self._watch_head(view)
                if self.dropped:
                    return False
            elif self.phase is _Phase.BODY:
                view = self._watch_body(view)
        return True

    def _watch_head(self, view: memoryview) -> memoryview:
        if self in self.guard.probation:  # it speaks: a connection like the others now
            self._enter(_Phase.HEAD, self.guard.limits.header_timeout)
        searched = max(0, len(self.head) - 3)
        self.head += view
        end = self.head.find(b"\r\n\r\n", searched)
        if end < 0:
            if self in self.guard.arriving:
                self.guard.move(self, _Phase.HEAD)
            if len(self.head) > MAX_HEAD_BYTES:
                self.guard.refusals.count("headers too large")
                self.drop(_HEAD_TOO_LARGE)
            return view[len(view) :]
        rest = len(self.head) - (end + 4)
        head = bytes(self.head[:end])
        self.head.clear()
        length, self.chunked = _body_framing(head)
        if length > self.guard.limits.max_body_bytes:
            self.guard.refusals.count("body too large")
            self.drop(_TOO_LARGE)
            return view[len(view) :]
        self.body_left = length
        self.chunked_tail = b""
        if self.body_left or self.chunked:
            self._enter(_Phase.BODY, self.guard.limits.body_timeout)
        else:
            self._received()
        return view[len(view) - rest :]

    def _watch_body(self, view: memoryview) -> memoryview:
        if self.chunked:
            # Our clients do not send chunked bodies; the last chunk ends the request (aiohttp checks the rest).
            self.chunked_tail = (self.chunked_tail + bytes(view[-5:]))[-5:]
            if self.chunked_tail == b"0\r\n\r\n":
                self._received()
            return view[len(view) :]
        taken = min(self.body_left, len(view))
        self.body_left -= taken
        if not self.body_left:
            self._received()
        return view[taken:]

    def _received(self) -> None:
        self.received_at = self.loop.time()
        self._enter(_Phase.HANDLED, None)

    def _enter(self, phase: _Phase, timeout: float | None) -> None:
        self.phase = phase
        self.guard.move(self, phase)
        self._cancel_timer()
        if timeout is not None:
            self.timer = self.loop.call_later(timeout, self._timed_out)

    def _timed_out(self) -> None:
        self.timer = None
        if self in self.guard.probation:
            self.guard.refusals.count("silent over the connection cap, shed")
            self.drop()
        elif self.phase is _Phase.HEAD:
            started = bool(self.head)
            self.guard.refusals.count("headers timed out" if started else "idle connection timed out")
            self.drop(_TIMED_OUT if started else b"")
        elif self.phase is _Phase.BODY:
            self.guard.refusals.count("body timed out")
            self.drop()  # aiohttp may be handling the request already: no second answer on the wire

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _bytes_waiting(transport: asyncio.Transport) -> bool:
    sock = transport.get_extra_info("socket")
    try:
        waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4))
    except (AttributeError, OSError):
        return False
    return int.from_bytes(waiting, sys.byteorder) > 0


def _body_framing(head: bytes) -> tuple[int, bool]:
    """(`Content-Length`, chunked?) from a request's headers; a malformed length counts as 0 (aiohttp answers 400)."""
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length" and value.strip().isdigit():
            length = int(value.strip()[:20])
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


class _ServerLog(logging.Logger):
    """aiohttp's server log: malformed HTTP and vanished clients are counted refusals, not tracebacks; anything else
    (a bug in a handler) is logged as usual."""

    def __init__(self, refusals: Refusals) -> None:
        super().__init__(f"{__name__}.{refusals.server}")
        self.parent = log
        self.refusals = refusals

    def handle(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError | ConnectionError):
            self.refusals.count("malformed HTTP" if isinstance(error, HttpProcessingError) else "client went away")
            return
        super().handle(record)


class _AcceptFailures(logging.Filter):
    """asyncio logs an accept that failed for want of file descriptors with a traceback (at most once a second per
    listening socket, while it pauses accepting); the cap should prevent it, and if not, it is counted instead."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals = Refusals("process")

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("socket.accept() out of system resource"):
            self.refusals.count("accept failed, out of file descriptors")
            return False
        return True


_ACCEPT_FAILURES = _AcceptFailures()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _read_body_first(limits: HttpLimits, refusals: Refusals) -> Any:
    @web.middleware
    async def read_body_first(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                await asyncio.wait_for(request.read(), limits.body_timeout)
            except web.HTTPRequestEntityTooLarge:
                refusals.count("body too large")
                return web.Response(status=413, text="Request body too large.")
            except (TimeoutError, ConnectionError, HttpProcessingError):
                refusals.count("body incomplete")
                return web.Response(status=400, text="Incomplete request body.")
        return await handler(request)

    return read_body_first


class GuardedServer:
    """One guarded aiohttp server: add routes to `app`, then `start` (returns the bound port) and `stop`."""

    def __init__(
        self, name: str, host: str, port: int, limits: HttpLimits | None = None, *, refusals: Refusals | None = None
    ) -> None:
        self.limits = limits or HttpLimits()
        self.refusals = refusals or Refusals(name)
        self.host = host
        self.port = port
        self.app = web.Application(
            client_max_size=self.limits.max_body_bytes,
            middlewares=[_read_body_first(self.limits, self.refusals)],
        )
        self._guard = _Guard(self.limits, self.refusals)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    @property
    def cap(self) -> int:
        return self._guard.cap

    @property
    def open_connections(self) -> int:
        return self._guard.open

    async def start(self) -> int:
        """Listen (an `OSError` when the address is taken); returns the port, the bound one when 0 was asked for."""
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=self.limits.keepalive_timeout,
            logger=_ServerLog(self.refusals),
        )
        await self._runner.setup()
        logging.getLogger("asyncio").addFilter(_ACCEPT_FAILURES)  # once per process: the same filter object
        handler = self._runner.server
        assert handler is not None
        guard = self._guard
        try:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Connection(handler(), guard), self.host, self.port, backlog=ACCEPT_BATCH
            )
            for listening in self._server.sockets:  # asyncio uses one number for both; the kernel's queue is longer
                sock = socket.socket(fileno=listening.fileno())
                try:
                    sock.listen(LISTEN_BACKLOG)
                finally:
                    sock.detach()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
