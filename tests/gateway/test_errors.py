"""The error boundary: every exception a handler raises becomes an answer in the envelope of
its path, in one place; an unforeseen one becomes an enveloped 500 with a request id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import PIPELINE, create_app
from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.dialects import create_dialects
from gateway.errors import SENT, STORE_UNAVAILABLE, Envelopes, error_boundary
from gateway.metrics import Metrics
from gateway.services import SERVICES
from gateway.stores.base import StoreUnavailable
from gateway.upstream import UpstreamError
from rules.decisions import Reason, Refused

from ..harness import ADMIN_TOKEN

ClientFactory = Callable[..., Any]

# One path per envelope kind, and how to read that envelope's code and message.
PATHS = {
    "upstox": "/v2/order/place",
    "kotak": "/quick/order/rule/ms/place",
    "paradex": "/v1/orders",
    "gateway": "/gateway/v1/family",
    "admin": "/admin/v1/accounts",
}


def code(kind: str, body: Any) -> str:
    if kind == "upstox":
        return str(body["errors"][0]["error_code"])
    if kind == "kotak":
        return str(body["stCode"])
    return str(body["error"])


def message(kind: str, body: Any) -> str:
    if kind == "upstox":
        return str(body["errors"][0]["message"])
    return str(body["errMsg"] if kind == "kotak" else body["message"])


INTERNAL = {
    "upstox": "UDAPI9500",
    "kotak": "9500",
    "paradex": "INTERNAL_ERROR",
    "gateway": "INTERNAL_ERROR",
    "admin": "INTERNAL_ERROR",
}
STORE = {
    "upstox": "UDAPI9503",
    "kotak": "9503",
    "paradex": "STORE_UNAVAILABLE",
    "gateway": "STORE_UNAVAILABLE",
    "admin": "STORE_UNAVAILABLE",
}


class Raiser:
    """A catch-all handler raising whatever the test sets, after marking the order sent."""

    def __init__(self) -> None:
        self.exc: BaseException = RuntimeError("boom")
        self.sent = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.sent:
            request[SENT] = True
        raise self.exc


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def raising(
    aiohttp_client: ClientFactory, metrics: Metrics
) -> tuple[TestClient[Any, Any], Raiser]:
    raiser = Raiser()
    boundary = error_boundary(Envelopes(create_dialects()), metrics, max_body_bytes=100)
    app = web.Application(middlewares=[boundary])
    app.router.add_route("*", "/{tail:.*}", raiser.handle)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client, raiser


@pytest.mark.parametrize("kind", list(PATHS))
async def test_unforeseen_error_is_an_enveloped_500_with_a_request_id(
    raising: tuple[TestClient[Any, Any], Raiser],
    metrics: Metrics,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, _ = raising
    with caplog.at_level(logging.ERROR, logger="order_gateway"):
        resp = await client.post(PATHS[kind], data=b"{}")
    body = await resp.json()
    assert resp.status == 500
    assert resp.content_type == "application/json"
    assert code(kind, body) == INTERNAL[kind]
    rid = resp.headers["X-Request-Id"]
    assert body["request_id"] == rid and rid in message(kind, body)
    assert "outcome" not in body
    # the log line names the request id and carries the traceback
    (record,) = [r for r in caplog.records if rid in r.getMessage()]
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])
    label = "gateway" if kind in ("gateway", "admin") else kind
    assert metrics.registry.get_sample_value("gateway_internal_errors_total", {"envelope": label})


async def test_a_safe_client_request_id_is_echoed_an_unsafe_one_replaced(
    raising: tuple[TestClient[Any, Any], Raiser],
) -> None:
    client, _ = raising
    resp = await client.get("/gateway/v1/x", headers={"X-Request-Id": "abc-123.X"})
    assert resp.headers["X-Request-Id"] == "abc-123.X"
    assert (await resp.json())["request_id"] == "abc-123.X"
    for unsafe in ("a b", "x" * 65, "ab\u00e9", ""):
        resp = await client.get("/gateway/v1/x", headers={"X-Request-Id": unsafe})
        rid = resp.headers["X-Request-Id"]
        assert rid != unsafe and len(rid) == 32 and rid.isalnum()


async def test_an_error_after_an_order_was_sent_never_says_nothing_was_sent(
    raising: tuple[TestClient[Any, Any], Raiser],
) -> None:
    client, raiser = raising
    raiser.sent = True
    for exc in (RuntimeError("boom"), StoreUnavailable("down")):
        raiser.exc = exc
        resp = await client.post(PATHS["upstox"], data=b"{}")
        body = await resp.json()
        assert resp.status == 500 and body["outcome"] == "unknown"
        assert "nothing was sent" not in message("upstox", body)
        assert "outcome is unknown" in message("upstox", body)


@pytest.mark.parametrize("kind", list(PATHS))
async def test_store_unavailable_is_one_503_message_in_every_envelope(
    raising: tuple[TestClient[Any, Any], Raiser], kind: str
) -> None:
    client, raiser = raising
    raiser.exc = StoreUnavailable("sqlite: disk I/O error")
    resp = await client.get(PATHS[kind])
    body = await resp.json()
    assert resp.status == 503
    assert code(kind, body) == STORE[kind]
    assert message(kind, body) == STORE_UNAVAILABLE


async def test_refused_keeps_its_status_code_and_retry_after(
    raising: tuple[TestClient[Any, Any], Raiser],
) -> None:
    client, raiser = raising
    raiser.exc = Refused(Reason.RATE_LIMITED, "slow down", retry_after=0.2)
    resp = await client.post(PATHS["upstox"])
    body = await resp.json()
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert code("upstox", body) == "UDAPI10005" and message("upstox", body) == "slow down"
    resp = await client.post(PATHS["kotak"])
    assert resp.status == 429 and str((await resp.json())["stCode"]) == "1040"


async def test_upstream_errors_map_to_their_reason(
    raising: tuple[TestClient[Any, Any], Raiser],
) -> None:
    client, raiser = raising
    raiser.exc = UpstreamError(Reason.UPSTREAM_UNAVAILABLE, "connect refused")
    resp = await client.get("/v1/markets")
    assert resp.status == 503
    assert await resp.json() == {"error": "UPSTREAM_UNAVAILABLE", "message": "connect refused"}


@pytest.mark.parametrize(
    ("exc", "status", "reason"),
    [
        (web.HTTPRequestEntityTooLarge(100, 200), 413, "BODY_TOO_LARGE"),
        (web.HTTPNotFound(), 404, "NOT_FOUND"),
        (web.HTTPMethodNotAllowed("PATCH", ["GET", "POST"]), 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_aiohttp_refusals_are_enveloped(
    raising: tuple[TestClient[Any, Any], Raiser], exc: web.HTTPException, status: int, reason: str
) -> None:
    client, raiser = raising
    raiser.exc = exc
    resp = await client.get("/gateway/v1/x")
    assert resp.status == status
    assert (await resp.json())["error"] == reason
    if status == 405:
        assert resp.headers["Allow"] == "GET,POST"


async def test_other_http_exceptions_pass_through(
    raising: tuple[TestClient[Any, Any], Raiser],
) -> None:
    client, raiser = raising
    raiser.exc = web.HTTPFound("/elsewhere")
    resp = await client.get("/gateway/v1/x", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/elsewhere"


# The boundary in the real app: a store that breaks in a way nobody foresaw --------------------


class Exploding:
    """The real store, except that the reads every handler starts with raise a bug."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in ("snapshot", "get_app", "list_accounts"):

            async def broken(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError(f"{name} broke")

            return broken
        return getattr(self._store, name)


@pytest.fixture
async def app_client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    config = load_config(
        None,
        {
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_STORE_URL": f"sqlite:///{tmp_path}/gateway.db",
            "GATEWAY_UPSTREAM_UPSTOX": "http://127.0.0.1:9",
            "GATEWAY_UPSTREAM_KOTAK": "http://127.0.0.1:9",
            "GATEWAY_UPSTREAM_PARADEX": "http://127.0.0.1:9",
        },
    )
    app = create_app(config, clock=FakeClock())
    client: TestClient[Any, Any] = await aiohttp_client(app)
    services = app[SERVICES]
    pipeline = app[PIPELINE]
    services.store = pipeline.credentials = Exploding(services.store)
    return client


@pytest.mark.parametrize(
    ("kind", "method", "path", "headers"),
    [
        ("upstox", "POST", "/v2/order/place", {"Authorization": "Bearer t"}),
        ("upstox", "GET", "/v2/user/ip", {"Authorization": "Bearer t"}),
        ("kotak", "POST", "/quick/order/rule/ms/place", {"Auth": "t", "Sid": "s"}),
        ("paradex", "GET", "/v1/orders", {"Authorization": "Bearer t"}),
        ("gateway", "POST", "/gateway/v1/session", {}),
        ("admin", "GET", "/admin/v1/accounts", {"Authorization": f"Bearer {ADMIN_TOKEN}"}),
    ],
)
async def test_a_broken_store_in_the_app_gets_the_enveloped_500(
    app_client: TestClient[Any, Any], kind: str, method: str, path: str, headers: dict[str, str]
) -> None:
    data = b'{"api_key": "k", "api_secret": "s"}' if kind == "gateway" else b"{}"
    resp = await app_client.request(method, path, headers=headers, data=data)
    body = await resp.json()
    assert resp.status == 500, body
    assert code(kind, body) == INTERNAL[kind]
    assert body["request_id"] == resp.headers["X-Request-Id"]


async def test_admin_auth_refusals_go_through_the_boundary(
    app_client: TestClient[Any, Any],
) -> None:
    resp = await app_client.get("/admin/v1/accounts", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "INVALID_TOKEN"
    resp = await app_client.get("/admin/v1/no-such-route", headers={"Authorization": "Bearer x"})
    assert resp.status == 401
