"""The one boundary to the upstream order API (SPEC §10).

Requests go through one pooled ``ClientSession`` with explicit timeouts.  Order requests are
never retried: not by us, and not by aiohttp, which otherwise re-sends a PUT or DELETE once
when a kept-alive connection turns out to be closed (RFC 9112 §9.3.1 allows it for idempotent
methods, but an order cancel or modify is not idempotent at a broker).

Every ``aiohttp`` error is mapped here to :class:`UpstreamError` with the refusal reason:
- connect failure, nothing sent: ``UPSTREAM_UNAVAILABLE`` (503), the outcome is known (nothing);
- failure after the request was written (reset, timeout, disconnect): ``UPSTREAM_FAILED``
  (502) or ``UPSTREAM_TIMEOUT`` (504), the outcome is unknown.
An upstream 5xx answer is passed back as it came, but recorded as unknown outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from rules.decisions import Reason

from .config import UpstreamConfig


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
    headers: CIMultiDictProxy[str]
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
        "content-encoding",
        "server",
        "date",
    }
)


def response_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The upstream's response headers a client may see."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_RESPONSE_HEADERS)


def sign(secret: str, method: str, path: str, user_id: str, timestamp: str) -> str:
    """HMAC-SHA256 over method, path, user id and timestamp, hex (``X-Gateway-Signature``)."""
    message = "\n".join((method, path, user_id, timestamp)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Upstream:
    """A pooled HTTP client for the configured upstream base URLs."""

    def __init__(self, config: UpstreamConfig, bases: Mapping[str, str]) -> None:
        self._config = config
        self._bases = dict(bases)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(
            total=self._config.timeout_s,
            sock_connect=self._config.connect_timeout_s,
            sock_read=self._config.timeout_s,
        )
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # aiohttp re-sends PUT/DELETE once on a dropped keep-alive connection; an order must
        # never reach the broker twice.  No public switch exists; tests pin that this holds.
        session._retry_connection = False
        self._session = session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def base(self, dialect: str) -> str:
        return self._bases[dialect]

    async def send(
        self,
        dialect: str,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> UpstreamResponse:
        if self._session is None:
            raise UpstreamError(Reason.UPSTREAM_UNAVAILABLE, "upstream client is not running")
        # path_qs is already percent-encoded: sent as it is, never re-encoded (a Kotak quote
        # path carries a literal "|", which yarl would otherwise turn into %7C).
        url = URL(self._bases[dialect] + path_qs, encoded=True)
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            ) as resp:
                payload = await resp.read()
                return UpstreamResponse(
                    resp.status, resp.headers, payload, time.perf_counter() - started
                )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                Reason.UPSTREAM_UNAVAILABLE, f"upstream {dialect} is unreachable: {exc.os_error}"
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamError(
                Reason.UPSTREAM_UNAVAILABLE,
                f"upstream {dialect} did not accept a connection in time",
            ) from exc
        except TimeoutError as exc:
            raise UpstreamError(
                Reason.UPSTREAM_TIMEOUT, f"upstream {dialect} did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                Reason.UPSTREAM_FAILED,
                f"upstream {dialect} failed after the request was sent: {exc}",
            ) from exc
