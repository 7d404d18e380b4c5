"""The one boundary to the upstream order API (SPEC §10).

Requests go over a small HTTP/1.1 keep-alive pool of ``asyncio.Protocol`` connections, with
responses parsed by ``httptools`` (llhttp).  It replaces aiohttp's ``ClientSession`` on this
path because the client hop was the largest single cost per order (see benchmarks/README.md),
and because it lets the no-retry rule be a property of the code rather than a switch: a
request is written once, on one connection, and whatever happens next is reported, never
repeated.  (aiohttp re-sends a PUT or DELETE once when a kept-alive connection turns out to be
closed, as RFC 9112 §9.3.1 allows for idempotent methods; an order cancel or modify is not
idempotent at a broker.)

Every failure is mapped here, and only here, to :class:`UpstreamError`:
- no connection could be made, nothing was sent: ``UPSTREAM_UNAVAILABLE`` (503);
- the connection failed after the request was written (reset, close, malformed answer):
  ``UPSTREAM_FAILED`` (502), outcome unknown;
- no complete answer within ``timeout_s``: ``UPSTREAM_TIMEOUT`` (504), outcome unknown.

Idle connections are dropped after ``KEEPALIVE_S`` (shorter than common server keep-alive
timeouts) so that an order is rarely written into a connection the server is closing.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict

from rules.decisions import Reason

from .config import UpstreamConfig
from .deadlines import Deadlines

KEEPALIVE_S = 15.0
MAX_CONNECTIONS_PER_HOST = 256
MAX_CONNECTING = 32  # connection attempts in flight per pool
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class UpstreamError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def outcome_unknown(self) -> bool:
        return self.reason is not Reason.UPSTREAM_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: tuple[tuple[str, str], ...]  # as received, in order
    body: bytes
    latency_s: float


# Response headers that describe the upstream hop, not the answer.
_HOP_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "server",
        "date",
    }
)


def response_headers(headers: tuple[tuple[str, str], ...]) -> CIMultiDict[str]:
    """The upstream's response headers a client may see."""
    return CIMultiDict((k, v) for k, v in headers if k.lower() not in _HOP_RESPONSE_HEADERS)


def sign(secret: str, method: str, target: str, user_id: str, timestamp: str, body: bytes) -> str:
    """``X-Gateway-Signature`` (SPEC §10): HMAC-SHA256, hex, over the lines method, request
    target (path and query, as sent), user id, timestamp and the body's SHA-256 (hex; of the
    empty string when there is none), so a query or a body changed on the way fails it.
    ``docs/upstream-signature.md`` shows an upstream verifying it."""
    digest = hashlib.sha256(body).hexdigest()
    message = "\n".join((method, target, user_id, timestamp, digest)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class _Closed(Exception):
    """The connection ended before a complete answer."""


class _Expired(Exception):
    """No complete answer within the timeout."""


class _Connection(asyncio.Protocol):
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
            self._fail(_Closed("the upstream tried to upgrade the connection"))
        except httptools.HttpParserError as exc:
            self._fail(_Closed(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and not self._framed and self._waiter is not None:
            self._finish()  # a body delimited by the connection closing is complete now
        else:
            self._fail(_Closed(f"connection closed before a complete answer ({exc or 'EOF'})"))

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
        self._fail(_Expired())

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
class _Origin:
    scheme: str
    host: str
    port: int
    prefix: str  # a path prefix of the base URL, if any
    host_header: str


def _origin(base: str) -> _Origin:
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    default = (parts.scheme, port) in (("http", 80), ("https", 443))
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return _Origin(
        parts.scheme, host, port, parts.path.rstrip("/"), shown if default else f"{shown}:{port}"
    )


class _Pool:
    """Idle keep-alive connections to one origin, and a cap on connections in use."""

    def __init__(
        self, origin: _Origin, ssl_context: ssl.SSLContext | None, egress: str | None = None
    ) -> None:
        self.origin = origin
        self._ssl = ssl_context
        # The local address connections leave from (SPEC §14); port 0: any free one.
        self._local = None if egress is None else (egress, 0)
        self._idle: collections.deque[_Connection] = collections.deque()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS_PER_HOST)
        self._connecting = asyncio.Semaphore(MAX_CONNECTING)

    async def acquire(self, connect_timeout: float) -> _Connection:
        await self._slots.acquire()
        try:
            conn = self._reuse()
            if conn is not None:
                return conn
            # A burst opens at most MAX_CONNECTING at once: hundreds of simultaneous SYNs
            # overflow an upstream's accept queue, and the kernel's retry after 1 s equals the
            # connect timeout.  The wait for a turn is not counted against that timeout.
            async with self._connecting:
                conn = self._reuse()  # released while this request waited for its turn
                if conn is not None:
                    return conn
                loop = asyncio.get_running_loop()
                transport, fresh = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _Connection(loop),
                        self.origin.host,
                        self.origin.port,
                        ssl=self._ssl,
                        server_hostname=self.origin.host if self._ssl else None,
                        local_addr=self._local,
                    ),
                    connect_timeout,
                )
        except BaseException:
            self._slots.release()
            raise
        # uvloop may return before connection_made has run: take the transport from here
        fresh.transport = transport
        return fresh

    def _reuse(self) -> _Connection | None:
        """A kept-alive connection still fresh enough to write an order into, if any."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        self._slots.release()
        if conn.reusable:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    if body or method not in _BODYLESS_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class Upstream:
    """The configured upstream base URLs, each with keep-alive pools per egress address.

    ``bases`` maps a dialect (``upstox``) or a dialect's named host (``upstox.orders``, SPEC
    §14) to a base URL.  A pool holds connections to one origin from one local address:
    an account's traffic never rides a connection opened from another account's address.
    """

    def __init__(self, config: UpstreamConfig, bases: Mapping[str, str]) -> None:
        self._config = config
        self._bases = dict(bases)
        self._origins: dict[str, _Origin] = {}
        self._pools: dict[tuple[_Origin, str | None], _Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._deadlines = Deadlines(config.timeout_s)

    async def start(self) -> None:
        self._tls = ssl.create_default_context()
        for name, base in self._bases.items():
            if base:
                self._origins[name] = _origin(base)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}
        self._origins = {}
        self._deadlines.close()

    def base(self, dialect: str) -> str:
        return self._bases[dialect]

    def _pool(self, name: str, egress: str | None, base_url: str | None) -> _Pool | None:
        if base_url is not None:  # the broker's own base URL for this account (kotak baseUrl)
            origin = self._origins.get(base_url)
            if origin is None:
                origin = self._origins[base_url] = _origin(base_url)
        else:
            origin = self._origins.get(name)
        if origin is None:
            return None
        pool = self._pools.get((origin, egress))
        if pool is None:
            tls = self._tls if origin.scheme == "https" else None
            pool = self._pools[origin, egress] = _Pool(origin, tls, egress)
        return pool

    async def send(
        self,
        dialect: str,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        egress: str | None = None,
        host: str | None = None,
        base_url: str | None = None,
    ) -> UpstreamResponse:
        """Send one request, once.  ``path_qs`` is already percent-encoded.  ``egress``: the
        local address to leave from (None: the default route); ``host``: the dialect's named
        host (``orders``, ``login``), falling back to the dialect's base when none is
        configured; ``base_url``: a base the broker gave this account, ahead of both."""
        name = f"{dialect}.{host}" if host and f"{dialect}.{host}" in self._origins else dialect
        pool = self._pool(name, egress, base_url)
        if pool is None:
            raise UpstreamError(Reason.UPSTREAM_UNAVAILABLE, f"no upstream for {dialect}")
        started = time.perf_counter()
        try:
            conn = await pool.acquire(self._config.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(
                Reason.UPSTREAM_UNAVAILABLE,
                f"upstream {dialect} is unreachable: {exc or 'timeout'}",
            ) from exc
        request = _request_bytes(
            method, pool.origin.prefix + path_qs, pool.origin.host_header, headers, body
        )
        completed = False
        waiter = conn.begin(request, head_only=method == "HEAD")
        self._deadlines.add(conn, asyncio.get_running_loop())
        try:
            await waiter
            completed = True
        except _Expired as exc:
            raise UpstreamError(
                Reason.UPSTREAM_TIMEOUT, f"upstream {dialect} did not answer in time"
            ) from exc
        except (_Closed, OSError) as exc:
            raise UpstreamError(
                Reason.UPSTREAM_FAILED,
                f"upstream {dialect} failed after the request was sent: {exc}",
            ) from exc
        finally:
            self._deadlines.remove(conn)
            if not completed:  # failed, timed out or cancelled mid-answer: never reuse it
                conn.close()
            pool.release(conn)
        return UpstreamResponse(
            conn.status,
            tuple(conn.headers),
            b"".join(conn.body),
            time.perf_counter() - started,
        )
