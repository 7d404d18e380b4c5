"""Helpers the paper broker's dialect modules share."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from gateway.paper.keys import PAPER, RECEIVED, PaperState, Received
from gateway.paper.state import OpenOrder

USER_HEADER = "X-Gateway-User-Id"


def latency_ms(request: web.Request) -> int:
    return max(1, int((time.monotonic() - received(request).started) * 1000))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def state(request: web.Request) -> PaperState:
    return request.app[PAPER]


def received(request: web.Request) -> Received:
    return request[RECEIVED]


def user_id(request: web.Request) -> str | None:
    return request.headers.get(USER_HEADER)


def accept(request: web.Request, order_ids: list[str]) -> None:
    """Record the request as an accepted order request (``GET /paper/orders``)."""
    state(request).ledger.accept(received(request).entry, order_ids)


def opened(request: web.Request, order_id: str, tag: str | None = None) -> None:
    """A placed order joins the open-order book that cancel-all requests empty."""
    dialect = str(received(request).entry["dialect"])
    state(request).ledger.open_orders[order_id] = OpenOrder(dialect=dialect, tag=tag)


def close(request: web.Request, order_ids: list[str]) -> None:
    for order_id in order_ids:
        state(request).ledger.open_orders.pop(order_id, None)


def open_ids(request: web.Request, dialect: str, tag: str | None = None) -> list[str]:
    return [
        order_id
        for order_id, order in state(request).ledger.open_orders.items()
        if order.dialect == dialect and (tag is None or order.tag == tag)
    ]
