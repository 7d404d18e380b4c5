"""Upstox API v2/v3 as the paper broker answers it.

Shapes follow the response models of upstox-python-sdk 2.30: ``PlaceOrderResponse``
(``data.order_id``); ``PlaceOrderV3Response`` (``data.order_ids``, ``metadata.latency``);
``ModifyOrderV3Response`` and ``CancelOrderV3Response``; ``MultiOrderResponse`` (per-leg
``correlation_id``, ``summary``); ``CancelOrExitMultiOrderResponse`` (``data.order_ids``);
``GttTriggerOrderResponse`` (``data.gtt_order_ids``); ``GetMarketQuoteLastTradedPriceResponseV3``
(``data`` keyed ``<segment>:<symbol>``, the real key in ``instrument_token``, with
``last_price``, ``ltq``, ``volume``, ``cp``), as on the LTP Quotes V3 page of
upstox.com/developer/api-documentation. Since 1 April 2026 API orders may not be plain MARKET or
SL-M: such places and modifies get 400 with ``UDAPI1158`` in the Upstox error envelope. The
``UDAPI1000`` code for a malformed body is the paper broker's own.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.paper.common import (
    accept,
    close,
    json_response,
    latency_ms,
    open_ids,
    opened,
    received,
    state,
    user_id,
)

MARKET_REFUSED = "UDAPI1158"
INVALID_INPUT = "UDAPI1000"
REFUSED_TYPES = {
    "MARKET": "Market orders are not allowed for API orders; place a limit order",
    "SL-M": "Stop-loss market (SL-M) orders are not allowed for API orders; use SL",
}


def error(code: str, message: str, status: int = 400) -> web.Response:
    return json_response(
        {
            "status": "error",
            "errors": [
                {
                    "error_code": code,
                    "message": message,
                    "property_path": None,
                    "invalid_value": None,
                }
            ],
        },
        status,
    )


def _latency(request: web.Request) -> dict[str, int]:
    return {"latency": latency_ms(request)}


def _refusal(order: dict[str, Any]) -> str | None:
    order_type = order.get("order_type")
    return REFUSED_TYPES.get(order_type) if isinstance(order_type, str) else None


def _order_body(request: web.Request) -> dict[str, Any] | web.Response:
    got = received(request)
    if not got.parsed or not isinstance(got.body, dict):
        return error(INVALID_INPUT, "Request body must be a JSON object")
    return got.body


def _tag(order: dict[str, Any]) -> str | None:
    tag = order.get("tag")
    return tag if isinstance(tag, str) else None


async def place(request: web.Request) -> web.Response:
    order = _order_body(request)
    if isinstance(order, web.Response):
        return order
    if refusal := _refusal(order):
        return error(MARKET_REFUSED, refusal)
    order_id = state(request).ids.numeric()
    accept(request, [order_id])
    opened(request, order_id, _tag(order))
    if request.path.startswith("/v3/"):
        return json_response(
            {"status": "success", "data": {"order_ids": [order_id]}, "metadata": _latency(request)}
        )
    return json_response({"status": "success", "data": {"order_id": order_id}})


def _answer_one(request: web.Request, order_id: str) -> web.Response:
    body: dict[str, Any] = {"status": "success", "data": {"order_id": order_id}}
    if request.path.startswith("/v3/"):
        body["metadata"] = _latency(request)
    return json_response(body)


async def modify(request: web.Request) -> web.Response:
    order = _order_body(request)
    if isinstance(order, web.Response):
        return order
    order_id = order.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        return error(INVALID_INPUT, "order_id is required")
    if refusal := _refusal(order):
        return error(MARKET_REFUSED, refusal)
    accept(request, [order_id])
    return _answer_one(request, order_id)


async def cancel(request: web.Request) -> web.Response:
    order_id = request.query.get("order_id", "")
    if not order_id:
        return error(INVALID_INPUT, "order_id is required")
    accept(request, [order_id])
    close(request, [order_id])
    return _answer_one(request, order_id)


async def multi_place(request: web.Request) -> web.Response:
    got = received(request)
    if not got.parsed or not isinstance(got.body, list) or not got.body:
        return error(INVALID_INPUT, "Request body must be a non-empty JSON array of orders")
    placed: list[dict[str, str]] = []
    errors: list[dict[str, Any]] = []
    for leg in got.body:
        leg = leg if isinstance(leg, dict) else {}
        correlation_id = str(leg.get("correlation_id", ""))
        refusal = _refusal(leg)
        if refusal:
            errors.append(
                {
                    "correlation_id": correlation_id,
                    "error_code": MARKET_REFUSED,
                    "message": refusal,
                    "property_path": None,
                    "invalid_value": None,
                    "instrument_key": leg.get("instrument_token"),
                    "order_id": None,
                }
            )
            continue
        order_id = state(request).ids.numeric()
        placed.append({"correlation_id": correlation_id, "order_id": order_id})
        opened(request, order_id, _tag(leg))
    summary = {"total": len(got.body), "success": len(placed), "error": len(errors)}
    if not placed:
        return json_response(
            {"status": "error", "data": [], "errors": errors, "summary": summary}, 400
        )
    accept(request, [leg["order_id"] for leg in placed])
    body: dict[str, Any] = {"status": "success" if not errors else "partial_success"}
    body.update({"data": placed, "summary": summary})
    if errors:
        body["errors"] = errors
    return json_response(body)


async def multi_cancel(request: web.Request) -> web.Response:
    tag = request.query.get("tag")
    order_ids = open_ids(request, "upstox", tag)
    accept(request, order_ids)
    close(request, order_ids)
    summary = {"total": len(order_ids), "success": len(order_ids), "error": 0}
    return json_response(
        {"status": "success", "data": {"order_ids": order_ids}, "summary": summary}
    )


async def exit_positions(request: web.Request) -> web.Response:
    accept(request, [])
    summary = {"total": 0, "success": 0, "error": 0}
    return json_response({"status": "success", "data": {"order_ids": []}, "summary": summary})


def _gtt_answer(request: web.Request, gtt_id: str) -> web.Response:
    return json_response(
        {"status": "success", "data": {"gtt_order_ids": [gtt_id]}, "metadata": _latency(request)}
    )


async def gtt_place(request: web.Request) -> web.Response:
    order = _order_body(request)
    if isinstance(order, web.Response):
        return order
    gtt_id = state(request).ids.gtt()
    accept(request, [gtt_id])
    return _gtt_answer(request, gtt_id)


async def gtt_change(request: web.Request) -> web.Response:
    got = received(request)
    body = got.body if got.parsed and isinstance(got.body, dict) else {}
    gtt_id = body.get("gtt_order_id") or request.query.get("gtt_order_id")
    if not isinstance(gtt_id, str) or not gtt_id:
        return error(INVALID_INPUT, "gtt_order_id is required")
    accept(request, [gtt_id])
    return _gtt_answer(request, gtt_id)


def _instrument_keys(request: web.Request) -> list[str]:
    keys: list[str] = []
    for value in request.query.getall("instrument_key", []):
        keys.extend(key.strip() for key in value.split(",") if key.strip())
    return keys


async def ltp(request: web.Request) -> web.Response:
    keys = _instrument_keys(request)
    if not keys:
        return error(INVALID_INPUT, "instrument_key is required")
    paper = state(request)
    v3 = request.path.startswith("/v3/")
    data: dict[str, dict[str, Any]] = {}
    for key in keys:
        quote = paper.prices.get(key)
        if quote is None:
            continue
        instrument = paper.instruments.get(key)
        name = (
            f"{instrument.exchange}:{instrument.symbol}"
            if instrument is not None
            else key.replace("|", ":")
        )
        item: dict[str, Any] = {"last_price": float(quote.price), "instrument_token": key}
        if v3:
            item.update({"ltq": 1, "volume": quote.volume, "cp": float(quote.close)})
        data[name] = item
    return json_response({"status": "success", "data": data})


# Upstox's read routes (upstox.com/developer/api-documentation; the SDK's api modules), each
# answered by ``echo``: which path arrived, for which account.  Any other path is a 404, as at
# the broker, so a typo is not mistaken for a working route.
READS = (
    "/v2/login/authorization/token",
    "/v2/logout",
    "/v2/user/profile",
    "/v2/user/get-funds-and-margin",
    "/v3/user/get-funds-and-margin",
    "/v2/user/kill-switch",
    "/v2/user/payments/{tail:.*}",
    "/v2/order/details",
    "/v2/order/history",
    "/v2/order/retrieve-all",
    "/v2/order/trades",
    "/v2/order/trades/get-trades-for-day",
    "/v3/order/gtt",
    "/v3/order/gtt/{gtt_id}",
    "/v2/portfolio/long-term-holdings",
    "/v3/portfolio/long-term-holdings",
    "/v2/portfolio/short-term-positions",
    "/v3/portfolio/mtf-positions",
    "/v2/portfolio/convert-position",
    "/v2/charges/{tail:.*}",
    "/v2/trade/profit-loss/{tail:.*}",
    "/v2/market-quote/quotes",
    "/v2/market-quote/ohlc",
    "/v3/market-quote/ohlc",
    "/v3/market-quote/option-greek",
    "/v2/historical-candle/{tail:.*}",
    "/v3/historical-candle/{tail:.*}",
    "/v2/expired-instruments/{tail:.*}",
    "/v2/option/contract",
    "/v2/option/chain",
    "/v2/market/{tail:.*}",
    "/v2/feed/{tail:.*}",
    "/v3/feed/{tail:.*}",
    "/v2/instruments/search",
    "/v2/mf/{tail:.*}",
    "/v2/ipos",
    "/v2/ipos/{tail:.*}",
    "/v2/news",
    "/v2/fundamentals/{tail:.*}",
)


async def not_found(request: web.Request) -> web.Response:
    # UDAPI9404 is the gateway's number for "not found": Upstox publishes no code of its own
    return error("UDAPI9404", f"no such API: {request.method} {request.path}", status=404)


async def echo(request: web.Request) -> web.Response:
    return json_response(
        {"status": "success", "data": {"path": request.path, "user_id": user_id(request)}}
    )


def add_routes(router: web.UrlDispatcher) -> None:
    for version in ("v2", "v3"):
        router.add_post(f"/{version}/order/place", place)
        router.add_put(f"/{version}/order/modify", modify)
        router.add_delete(f"/{version}/order/cancel", cancel)
        router.add_get(f"/{version}/market-quote/ltp", ltp)
    router.add_post("/v2/order/multi/place", multi_place)
    router.add_delete("/v2/order/multi/cancel", multi_cancel)
    router.add_post("/v2/order/positions/exit", exit_positions)
    router.add_post("/v3/order/gtt/place", gtt_place)
    router.add_put("/v3/order/gtt/modify", gtt_change)
    router.add_delete("/v3/order/gtt/cancel", gtt_change)
    for template in READS:
        router.add_route("*", template, echo)
    router.add_route("*", "/v2/{tail:.*}", not_found)
    router.add_route("*", "/v3/{tail:.*}", not_found)
