"""The bundled paper broker (SPEC §10): a real HTTP upstream for the three dialects.

It answers the order and LTP routes the way the brokers do (see the dialect modules for the
shapes and where they were checked), refuses plain market orders as a post-April-2026 broker does,
records every request it receives and moves prices by a random walk on each tick grid.

Its own routes, never recorded:
- ``GET /paper/requests``: every request received, with its ``source_ip``;
  ``DELETE /paper/requests`` clears everything;
- ``GET /paper/orders``: the accepted order requests, each with ``order_id`` (and ``order_ids``);
- ``PUT /paper/ltp`` ``{"<key>": "123.45"}`` sets prices, ``GET /paper/ltp`` lists them;
- ``GET /paper/health``.
It never checks credentials: the gateway owns identity and says who it is in headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from gateway.edge import check_text
from gateway.instruments import InstrumentMaster, sample_data, sample_master
from gateway.paper import broker, kotak, paradex, upstox
from gateway.paper.common import json_response
from gateway.paper.keys import PAPER, RECEIVED, PaperState, Received
from gateway.paper.state import PriceBook
from rules.decisions import Refused

__all__ = ["create_paper_app", "run_paper_broker"]

PRICES_FILE = "paper_prices.json"
_DIALECT_PREFIXES = (
    ("/v2/", "upstox"),
    ("/v3/", "upstox"),
    ("/v1/", "paradex"),
    ("/quick/", "kotak"),
    ("/script-details/", "kotak"),
    ("/portfolio/", "kotak"),
    ("/market-data/", "kotak"),
    ("/login/", "kotak"),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dialect_of(path: str) -> str:
    for prefix, dialect in _DIALECT_PREFIXES:
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return dialect
    return "unknown"


# orjson reads 1024 levels of nesting but writes only 254: a body nested deeper than the
# request log can write back is kept as text and refused as unparsed.
_MAX_DEPTH = 200


def _depth(value: Any, limit: int = _MAX_DEPTH) -> bool:
    """Whether ``value`` nests no deeper than ``limit``."""
    if limit < 0:
        return False
    if isinstance(value, dict):
        return all(_depth(v, limit - 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth(v, limit - 1) for v in value)
    return True


def _loads(text: str | bytes) -> tuple[Any, bool]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, False
    return (value, True) if _depth(value) else (None, False)


def _decode_body(raw: bytes, content_type: str) -> tuple[Any, bool]:
    if not raw:
        return None, True
    text = raw.decode("utf-8", "replace")
    if content_type == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "jData" not in form:
            return form, True
        jdata, parsed = _loads(form["jData"])
        return {"jData": jdata if parsed else form["jData"]}, parsed
    value, parsed = _loads(raw)
    return (value, True) if parsed else (text, False)


def _headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lowered = name.lower()
        headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
    return headers


def _query(request: web.Request) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name in request.query:
        values = request.query.getall(name)
        query[name] = values[0] if len(values) == 1 else list(values)
    return query


def _garbage(request: web.Request, message: str) -> web.Response:
    """A 400 in the envelope of the dialect the path belongs to."""
    dialect = dialect_of(request.path)
    if dialect == "kotak":
        return kotak.error(kotak.INVALID_INPUT, message)
    if dialect == "paradex":
        return paradex.error("VALIDATION_ERROR", message)
    return upstox.error(upstox.INVALID_INPUT, message)


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        # headers and query text that its own log could not write back (a broker says 400)
        check_text(request)
    except Refused as refused:
        return _garbage(request, refused.refusal.message)
    if request.path.startswith("/paper/"):
        return await handler(request)
    started = time.monotonic()
    body, parsed = _decode_body(await request.read(), request.content_type)
    entry = request.app[PAPER].ledger.record(
        dialect=dialect_of(request.path),
        method=request.method,
        path=request.path,
        query=_query(request),
        headers=_headers(request),
        body=body,
        source_ip=request.remote,
    )
    request[RECEIVED] = Received(entry=entry, body=body, parsed=parsed, started=started)
    if request.path not in broker.LOGIN_PATHS:
        broker_refusal = broker.refusal(request, str(entry["dialect"]))
        if broker_refusal is not None:
            return broker_refusal
    return await handler(request)


async def _requests(request: web.Request) -> web.Response:
    return json_response({"requests": request.app[PAPER].ledger.requests})


async def _orders(request: web.Request) -> web.Response:
    return json_response({"orders": request.app[PAPER].ledger.orders})


async def _clear(request: web.Request) -> web.Response:
    request.app[PAPER].ledger.clear()
    return web.Response(status=204)


async def _health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _get_ltp(request: web.Request) -> web.Response:
    return json_response({key: str(quote.price) for key, quote in request.app[PAPER].prices})


def _parse_prices(raw: object) -> dict[str, Decimal]:
    if not isinstance(raw, dict):
        raise ValueError('expected {"<instrument_key>": "<price>", ...}')
    prices: dict[str, Decimal] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{key}: price must be a string or a number")
        try:
            price = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"{key}: {value!r} is not a price") from exc
        if not price.is_finite() or price <= 0:
            raise ValueError(f"{key}: price must be positive")
        prices[key] = price
    return prices


async def _put_ltp(request: web.Request) -> web.Response:
    try:
        prices = _parse_prices(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, ValueError) as exc:
        return json_response({"error": "INVALID_PRICES", "message": str(exc)}, status=400)
    book = request.app[PAPER].prices
    for key, price in prices.items():
        book.set(key, price)
    return web.Response(status=204)


def _initial_prices(book: PriceBook) -> None:
    for key, price in _parse_prices(orjson.loads(sample_data(PRICES_FILE))).items():
        book.set(key, price)


async def _move_prices(state: PaperState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        state.prices.step(state.rng)


def _price_mover(interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def mover(app: web.Application) -> AsyncIterator[None]:
        if interval <= 0:
            yield
            return
        task = asyncio.create_task(_move_prices(app[PAPER], interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return mover


def create_paper_app(
    *,
    instruments: InstrumentMaster | None = None,
    seed: int | None = None,
    move_interval_s: float = 1.0,
) -> web.Application:
    """The paper broker; prices start from ``gateway/data/paper_prices.json``."""
    master = instruments if instruments is not None else sample_master()
    prices = PriceBook(master)
    _initial_prices(prices)
    app = web.Application(middlewares=[_record])
    app[PAPER] = PaperState(instruments=master, prices=prices, rng=random.Random(seed))
    app.cleanup_ctx.append(_price_mover(move_interval_s))
    app.router.add_get("/paper/requests", _requests)
    app.router.add_delete("/paper/requests", _clear)
    app.router.add_get("/paper/orders", _orders)
    app.router.add_get("/paper/ltp", _get_ltp)
    app.router.add_put("/paper/ltp", _put_ltp)
    app.router.add_get("/paper/health", _health)
    broker.add_routes(app.router)  # before upstox's: its echo answers every other method
    upstox.add_routes(app.router)
    kotak.add_routes(app.router)
    paradex.add_routes(app.router)
    return app


def run_paper_broker(host: str, port: int) -> None:
    """Serve the paper broker until interrupted (``order-gateway paper-broker``)."""
    web.run_app(create_paper_app(), host=host, port=port)
