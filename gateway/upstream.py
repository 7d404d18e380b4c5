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

The connections and their pool are in :mod:`gateway.upstream_wire`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import CIMultiDict

from rules.decisions import Reason

from .config import UpstreamConfig
from .deadlines import Deadlines
from .upstream_wire import Closed, Expired, Origin, Pool, parse_origin

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
        self._origins: dict[str, Origin] = {}
        self._pools: dict[tuple[Origin, str | None], Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._deadlines = Deadlines(config.timeout_s)

    async def start(self) -> None:
        self._tls = ssl.create_default_context()
        for name, base in self._bases.items():
            if base:
                self._origins[name] = parse_origin(base)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}
        self._origins = {}
        self._deadlines.close()

    def base(self, dialect: str) -> str:
        return self._bases[dialect]

    def bases(self) -> dict[str, str]:
        """Every configured base URL: the dialects' and their named hosts' (``upstox.orders``)."""
        return {name: base for name, base in self._bases.items() if base}

    def _pool(self, name: str, egress: str | None, base_url: str | None) -> Pool | None:
        if base_url is not None:  # the broker's own base URL for this account (kotak baseUrl)
            origin = self._origins.get(base_url)
            if origin is None:
                origin = self._origins[base_url] = parse_origin(base_url)
        else:
            origin = self._origins.get(name)
        if origin is None:
            return None
        pool = self._pools.get((origin, egress))
        if pool is None:
            tls = self._tls if origin.scheme == "https" else None
            pool = self._pools[origin, egress] = Pool(origin, tls, egress)
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
        except Expired as exc:
            raise UpstreamError(
                Reason.UPSTREAM_TIMEOUT, f"upstream {dialect} did not answer in time"
            ) from exc
        except (Closed, OSError) as exc:
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
