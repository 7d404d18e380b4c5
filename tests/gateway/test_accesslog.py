"""The request log's middleware around the error boundary: what a line says when the
handler fails, and how text lines keep one field per key."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.accesslog import ACCESS, access_middleware
from gateway.dialects import create_dialects
from gateway.errors import Envelopes, error_boundary
from gateway.metrics import Metrics
from rules.decisions import Reason, Refused

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def fail(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("boom")


async def refuse(request: web.Request) -> web.StreamResponse:
    request[ACCESS].account = 'AB 1"2'  # not a value a text line could hold unquoted
    raise Refused(Reason.FORBIDDEN, "no")


async def client_for(aiohttp_client: ClientFactory, fmt: str) -> TestClient[Any, Any]:
    boundary = error_boundary(Envelopes(create_dialects()), Metrics(), max_body_bytes=100)
    app = web.Application(middlewares=[access_middleware(trusted_proxies=(), fmt=fmt), boundary])
    app.router.add_get("/gateway/v1/fail", fail)
    app.router.add_get("/gateway/v1/refuse", refuse)
    return await aiohttp_client(app)


async def test_a_500_is_logged_as_an_error_under_the_id_its_answer_names(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await client_for(aiohttp_client, "json")
    with caplog.at_level(logging.INFO, logger="order_gateway"):
        resp = await client.get("/gateway/v1/fail")
    assert resp.status == 500
    [line] = [orjson.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert line["request_id"] == resp.headers["X-Request-Id"]
    assert (line["decision"], line["reason"], line["status"]) == ("error", "internal_error", 500)
    assert line["route_class"] == "gateway"


async def test_text_lines_quote_a_value_that_could_read_as_two_fields(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await client_for(aiohttp_client, "text")
    with caplog.at_level(logging.INFO, logger="order_gateway.access"):
        resp = await client.get("/gateway/v1/refuse?token=secret-in-query")
    assert resp.status == 403
    [record] = caplog.records
    line = record.getMessage()
    assert ' account="AB 1\\"2" ' in line
    assert " decision=refused reason=forbidden status=403 " in line
    assert " path=/gateway/v1/refuse " in line
    assert "secret-in-query" not in line  # never the query
