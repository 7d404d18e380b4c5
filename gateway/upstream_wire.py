"""The upstream's wire: one HTTP/1.1 connection as an ``asyncio.Protocol`` whose responses
``httptools`` (llhttp) parses, and a keep-alive pool of them per origin and egress address.

A connection carries one request at a time and never writes a request twice; the pool hands
out kept-alive connections (dropped after ``KEEPALIVE_S`` idle, shorter than common server
keep-alive timeouts, so that an order is rarely written into a connection the server is
closing) and caps connections in use and connection attempts in flight.  What a failure
means for the order is decided by :mod:`gateway.upstream`, the one boundary to the upstream.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

KEEPALIVE_S = 15.0
MAX_CONNECTIONS_PER_HOST = 256
MAX_CONNECTING = 32  # connection attempts in flight per pool


class Closed(Exception):
    """The connection ended before a complete answer."""


class Expired(Exception):
    """No complete answer within the timeout."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one request at a time; the parser's callbacks fill the answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._head_only = False
        self._keep_alive = False
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the body's end is known
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection is not trustworthy
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Closed("the upstream tried to upgrade the connection"))
        except httptools.HttpParserError as exc:
            self._fail(Closed(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and not self._framed and self._waiter is not None:
            self._finish()  # a body delimited by the connection closing is complete now
        else:
            self._fail(Closed(f"connection closed before a complete answer ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        header = name.decode("latin-1")
        lowered = header.lower()
        if lowered in ("content-length", "transfer-encoding"):
            self._framed = True
        self.headers.append((header, value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_only:  # a HEAD answer has no body whatever its headers say
            self._finish()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = bool(self._parser.should_keep_alive())  # only valid right now
        self._finish()

    # request cycle
    def begin(self, request: bytes, *, head_only: bool) -> asyncio.Future[None]:
        assert self.transport is not None
        self.headers, self.body = [], []
        self._headers_done = self._framed = self._keep_alive = False
        self._head_only = head_only
        self._waiter = self._loop.create_future()
        self.transport.write(request)
        return self._waiter

    @property
    def status(self) -> int:
        return int(self._parser.get_status_code())

    @property
    def reusable(self) -> bool:
        return not self.closed and not self._head_only and self._keep_alive

    def expire(self) -> None:
        self._fail(Expired())

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    prefix: str  # a path prefix of the base URL, if any
    host_header: str


def parse_origin(base: str) -> Origin:
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    default = (parts.scheme, port) in (("http", 80), ("https", 443))
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return Origin(
        parts.scheme, host, port, parts.path.rstrip("/"), shown if default else f"{shown}:{port}"
    )


class Pool:
    """Idle keep-alive connections to one origin, and a cap on connections in use."""

    def __init__(
        self, origin: Origin, ssl_context: ssl.SSLContext | None, egress: str | None = None
    ) -> None:
        self.origin = origin
        self._ssl = ssl_context
        # The local address connections leave from (SPEC §14); port 0: any free one.
        self._local = None if egress is None else (egress, 0)
        self._idle: collections.deque[Connection] = collections.deque()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS_PER_HOST)
        self._connecting = asyncio.Semaphore(MAX_CONNECTING)

    async def acquire(self, connect_timeout: float) -> Connection:
        await self._slots.acquire()
        try:
            conn = self._reuse()
            if conn is not None:
                return conn
            # A burst opens at most MAX_CONNECTING at once: hundreds of simultaneous SYNs
            # overflow an upstream's accept queue, and the kernel retries a dropped SYN only
            # after 1 s.  The wait for a turn is not counted against the connect timeout.
            async with self._connecting:
                conn = self._reuse()  # released while this request waited for its turn
                if conn is not None:
                    return conn
                loop = asyncio.get_running_loop()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancellation that lands as the connection completes
                async with asyncio.timeout(connect_timeout):
                    transport, fresh = await loop.create_connection(
                        lambda: Connection(loop),
                        self.origin.host,
                        self.origin.port,
                        ssl=self._ssl,
                        server_hostname=self.origin.host if self._ssl else None,
                        local_addr=self._local,
                    )
        except BaseException:
            self._slots.release()
            raise
        # uvloop may return before connection_made has run: take the transport from here
        fresh.transport = transport
        return fresh

    def _reuse(self) -> Connection | None:
        """A kept-alive connection still fresh enough to write an order into, if any."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return None

    def release(self, conn: Connection) -> None:
        self._slots.release()
        if conn.reusable:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
