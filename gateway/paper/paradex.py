"""Paradex REST v1 orders as the paper broker answers them.

Checked against docs.paradex.trade (api/prod/orders: new, batch, cancel, cancel-all, get): an
order is ``{"id", "account", "market", "side", "type", "size", "remaining_size", "price",
"status", "client_id", "instruction", "flags", "created_at", "last_updated_at", …}``, a new one
in status ``NEW``; ``POST /v1/orders`` answers 201 with it, ``POST /v1/orders/batch`` answers
``{"orders": [...], "errors": [...]}``, ``DELETE /v1/orders/{id}`` and ``DELETE /v1/orders``
(all open, optionally one ``market``) answer 204. Paradex lists crypto perpetuals, outside the
SEBI framework, so MARKET orders are accepted.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.paper.common import (
    accept,
    close,
    json_response,
    open_ids,
    opened,
    received,
    state,
    user_id,
)

_REQUIRED = ("market", "side", "type", "size")
_SIDES = ("BUY", "SELL")


def error(code: str, message: str, status: int = 400) -> web.Response:
    return json_response({"error": code, "message": message}, status)


def _invalid(order: object) -> str | None:
    if not isinstance(order, dict):
        return "order must be a JSON object"
    missing = [name for name in _REQUIRED if not order.get(name)]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if order["side"] not in _SIDES:
        return "side must be BUY or SELL"
    return None


def _new_order(request: web.Request, order: dict[str, Any]) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    size = str(order["size"])
    return {
        "id": state(request).ids.paradex(),
        "account": user_id(request) or "0x0",
        "market": order["market"],
        "side": order["side"],
        "type": order["type"],
        "size": size,
        "remaining_size": size,
        "price": str(order.get("price") or "0"),
        "status": "NEW",
        "client_id": order.get("client_id") or "",
        "instruction": order.get("instruction") or "GTC",
        "flags": order.get("flags") or [],
        "avg_fill_price": "",
        "cancel_reason": "",
        "created_at": now_ms,
        "last_updated_at": now_ms,
        "timestamp": now_ms,
    }


async def place(request: web.Request) -> web.Response:
    got = received(request)
    reason = _invalid(got.body) if got.parsed else "body must be JSON"
    if reason:
        return error("VALIDATION_ERROR", reason)
    order = _new_order(request, got.body)
    accept(request, [order["id"]])
    opened(request, order["id"], order["market"])
    return json_response(order, 201)


async def batch(request: web.Request) -> web.Response:
    got = received(request)
    if not got.parsed or not isinstance(got.body, list) or not got.body:
        return error("VALIDATION_ERROR", "body must be a non-empty JSON array of orders")
    orders: list[dict[str, Any]] = []
    errors: list[dict[str, str] | None] = []
    for item in got.body:
        reason = _invalid(item)
        if reason:
            errors.append({"error": "VALIDATION_ERROR", "message": reason})
            continue
        order = _new_order(request, item)
        orders.append(order)
        opened(request, order["id"], order["market"])
        errors.append(None)
    if orders:
        accept(request, [order["id"] for order in orders])
    return json_response({"orders": orders, "errors": errors}, 201 if orders else 400)


async def cancel(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    accept(request, [order_id])
    close(request, [order_id])
    return web.Response(status=204)


async def cancel_all(request: web.Request) -> web.Response:
    order_ids = open_ids(request, "paradex", request.query.get("market"))
    accept(request, order_ids)
    close(request, order_ids)
    return web.Response(status=204)


async def algo_place(request: web.Request) -> web.Response:
    """A TWAP (api/prod/algos/create-order) answers 201 with the algo, status NEW."""
    got = received(request)
    reason = _invalid(got.body) if got.parsed else "body must be JSON"
    if reason:
        return error("VALIDATION_ERROR", reason)
    order = _new_order(request, got.body)
    algo = {
        key: order[key]
        for key in ("id", "account", "market", "side", "size", "remaining_size", "status")
    }
    algo.update(algo_type=got.body.get("algo_type", "TWAP"), created_at=order["created_at"])
    accept(request, [algo["id"]])
    opened(request, algo["id"], algo["market"])
    return json_response(algo, 201)


# Paradex's read routes (docs.paradex.trade api/prod: account, markets, orders, fills,
# positions, balances), answered by ``echo``; any other /v1/ path is a 404 in its envelope.
READS = (
    "/v1/account",
    "/v1/account/{tail:.*}",
    "/v1/markets",
    "/v1/markets/{tail:.*}",
    "/v1/orders",
    "/v1/orders/{tail:.*}",
    "/v1/orders-history",
    "/v1/fills",
    "/v1/positions",
    "/v1/balance",
    "/v1/algo/orders",
    "/v1/algo/orders/{tail:.*}",
    "/v1/block-trades",
    "/v1/block-trades/{tail:.*}",
    "/v1/system/{tail:.*}",
)


async def not_found(request: web.Request) -> web.Response:
    return error("NOT_FOUND", f"no such API: {request.method} {request.path}", status=404)


async def echo(request: web.Request) -> web.Response:
    return json_response({"path": request.path, "user_id": user_id(request)})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/orders", place)
    router.add_post("/v1/orders/batch", batch)
    router.add_delete("/v1/orders", cancel_all)
    router.add_delete("/v1/orders/{order_id}", cancel)
    router.add_post("/v1/algo/orders", algo_place)
    router.add_delete("/v1/algo/orders/{order_id}", cancel)
    for template in READS:
        router.add_route("*", template, echo)
    router.add_route("*", "/v1/{tail:.*}", not_found)
