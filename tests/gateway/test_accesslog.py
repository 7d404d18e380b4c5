"""The request log's middleware around the error boundary: what a line says when the
handler fails, and how text lines keep one field per key; how serve's handler writes them."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.accesslog import ACCESS, _BufferedHandler, access_middleware
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


class Writes:
    """An unbuffered stream (stderr under ``PYTHONUNBUFFERED``): each write is a system call."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


async def test_lines_go_out_together_in_writes_of_whole_lines_under_the_chunk_size() -> None:
    out = Writes()
    handler = _BufferedHandler(out, bare=True)  # type: ignore[arg-type]
    lines = [f"line {n} " + "x" * (n % 90) for n in range(200)]

    for line in lines:
        handler.write_line("-", line)
    assert out.writes == []  # nothing written per line
    handler.flush()

    assert 1 < len(out.writes) < 20
    assert all(len(w) <= _BufferedHandler.CHUNK and w.endswith(b"\n") for w in out.writes)
    assert b"".join(out.writes).decode().splitlines() == lines


async def test_the_waiting_lines_are_written_within_the_flush_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_BufferedHandler, "FLUSH_S", 0.01)
    out = Writes()
    handler = _BufferedHandler(out, bare=False)  # type: ignore[arg-type]

    handler.write_line("2026-11-30T10:00:00.000+00:00", "request_id=a")
    await asyncio.sleep(0.05)

    assert out.writes == [
        b"2026-11-30T10:00:00.000+00:00 INFO order_gateway.access: request_id=a\n"
    ]


async def test_another_log_line_flushes_the_waiting_access_lines_first() -> None:
    out = Writes()
    handler = _BufferedHandler(out, bare=True)  # type: ignore[arg-type]
    other = logging.StreamHandler(io.StringIO())
    other.addFilter(handler.flush_first)
    logger = logging.getLogger("test.accesslog.order")
    logger.addHandler(other)
    try:
        handler.write_line("-", "access 1")
        logger.warning("something else")  # goes through ``other``, after the access line
        assert out.writes == [b"access 1\n"]
    finally:
        logger.removeHandler(other)
