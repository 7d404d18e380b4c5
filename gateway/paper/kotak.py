"""Kotak Neo Trade API as the paper broker answers it.

Checked against kotakneoapi 3.0.9 (``neo_api_client``): the order routes
``quick/order/rule/ms/place``, ``quick/order/vr/modify`` and ``quick/order/cancel`` take a form
body ``jData=<JSON>`` (``rest.py`` posts ``{"jData": json.dumps(body)}``); place sends ``am, dq, es,
mp, pc, pr, pt, qt, rt, tp, ts, tt, ig, os``, cancel ``{on, am}``. Success is
``{"stat": "Ok", "nOrdNo": "...", "stCode": 200}`` (docs/functions/orders/place_order.md of
Kotak-Neo/kotak-neo-python). Quotes are ``GET script-details/1.0/quotes/neosymbol/
<seg>|<token>[,<seg>|<token>…]/<quote_type>`` answering a JSON array of objects with string
fields ``exchange_token``, ``display_symbol``, ``exchange`` and ``ltp`` (``"801.6000"``), per
docs/functions/market_data/quotes.md. Market (MKT) and SL-M orders are refused with HTTP 400 and
``{"stCode": 1039, "errMsg": …, "stat": "Not_Ok"}``: 1039 is the code SPEC §6 assigns, since
Kotak's own code for this refusal is not published. ``stCode`` 1001 for a malformed jData is the
paper broker's own.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.paper.common import accept, close, json_response, opened, received, state, user_id

MARKET_REFUSED = 1039
INVALID_INPUT = 1001
REFUSED_TYPES = {
    "MKT": "Market orders are not allowed for API orders; place a limit order",
    "SL-M": "Stop-loss market (SL-M) orders are not allowed for API orders; use SL",
}
_PREFIXES = ("quick", "portfolio", "script-details", "market-data", "login")


def error(code: int, message: str, status: int = 400) -> web.Response:
    return json_response({"stCode": code, "errMsg": message, "stat": "Not_Ok"}, status)


def _ok(order_id: str) -> web.Response:
    return json_response({"nOrdNo": order_id, "stat": "Ok", "stCode": 200})


def _jdata(request: web.Request) -> dict[str, Any] | web.Response:
    got = received(request)
    body = got.body
    if not got.parsed or not isinstance(body, dict) or not isinstance(body.get("jData"), dict):
        return error(INVALID_INPUT, "Form field jData must hold a JSON object")
    jdata: dict[str, Any] = body["jData"]
    return jdata


def _refusal(jdata: dict[str, Any]) -> str | None:
    order_type = jdata.get("pt")
    return REFUSED_TYPES.get(order_type) if isinstance(order_type, str) else None


async def place(request: web.Request) -> web.Response:
    jdata = _jdata(request)
    if isinstance(jdata, web.Response):
        return jdata
    if refusal := _refusal(jdata):
        return error(MARKET_REFUSED, refusal)
    order_id = state(request).ids.numeric()
    accept(request, [order_id])
    tag = jdata.get("ig")
    opened(request, order_id, tag if isinstance(tag, str) else None)
    return _ok(order_id)


async def modify(request: web.Request) -> web.Response:
    jdata = _jdata(request)
    if isinstance(jdata, web.Response):
        return jdata
    order_id = jdata.get("no")
    if not isinstance(order_id, str) or not order_id:
        return error(INVALID_INPUT, "no (order number) is required")
    if refusal := _refusal(jdata):
        return error(MARKET_REFUSED, refusal)
    accept(request, [order_id])
    return _ok(order_id)


async def cancel(request: web.Request) -> web.Response:
    jdata = _jdata(request)
    if isinstance(jdata, web.Response):
        return jdata
    order_id = jdata.get("on")
    if not isinstance(order_id, str) or not order_id:
        return error(INVALID_INPUT, "on (order number) is required")
    accept(request, [order_id])
    close(request, [order_id])
    return _ok(order_id)


async def client_ip(request: web.Request) -> web.Response:
    """``whatsmyip``: the address this broker sees, in the shape of Kotak's answer
    (neo_api_client docs/functions/authentication/whatsmyip.md)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S.000")
    return json_response(
        {"data": [{"ip": request.remote, "time": stamp}], "stCode": 1000, "status": "success"}
    )


async def quotes(request: web.Request) -> web.Response:
    paper = state(request)
    answer: list[dict[str, Any]] = []
    for symbol in request.match_info["symbols"].split(","):
        seg, _, token = symbol.strip().partition("|")
        instrument = paper.instruments.by_kotak_token(seg, token)
        quote = paper.prices.get(instrument.key) if instrument is not None else None
        if instrument is None or quote is None:
            continue
        answer.append(
            {
                "exchange_token": token,
                "display_symbol": instrument.symbol,
                "exchange": seg,
                "lstup_time": str(int(time.time())),
                "ltp": f"{quote.price:.4f}",
                "last_volume": str(quote.volume),
                "ohlc": {"close": f"{quote.close:.4f}"},
            }
        )
    return json_response(answer)


# The read routes of neo_api_client's settings.py (order book, trades, positions, holdings,
# margin, limits, scrip master, quotes, option chain, history), answered by ``echo``; any other
# path under Kotak's prefixes is a 404 in Kotak's envelope.
READS = (
    "/quick/order/history",
    "/quick/user/orders",
    "/quick/user/trades",
    "/quick/user/check-margin",
    "/quick/user/limits",
    "/portfolio/v2/positions",
    "/portfolio/v1/holdings",
    "/script-details/1.0/masterscrip/file-paths",
    "/script-details/1.0/{tail:.*}",
    "/market-data/1.0/watchlist/expiries",
    "/market-data/1.0/watchlist/option-chain",
    "/market-data/1.0/historical/details",
)


async def not_found(request: web.Request) -> web.Response:
    return error(404, f"no such API: {request.method} {request.path}", status=404)


async def echo(request: web.Request) -> web.Response:
    return json_response(
        {
            "stat": "Ok",
            "stCode": 200,
            "data": {"path": request.path, "user_id": user_id(request)},
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/quick/order/rule/ms/place", place)
    router.add_post("/quick/order/vr/modify", modify)
    router.add_post("/quick/order/cancel", cancel)
    # exiting a cover or bracket order closes it as a cancel does: jData {on, am}
    router.add_post("/quick/order/co/exit", cancel)
    router.add_post("/quick/order/bo/exit", cancel)
    router.add_get("/login/1.0/get-client-ip", client_ip)
    router.add_get("/script-details/1.0/quotes/neosymbol/{symbols}/{quote_type}", quotes)
    for template in READS:
        router.add_route("*", template, echo)
    for prefix in _PREFIXES:
        router.add_route("*", f"/{prefix}/{{tail:.*}}", not_found)
