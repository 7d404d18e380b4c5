from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.instruments import sample_master
from gateway.paper import create_paper_app
from gateway.paper.app import dialect_of
from gateway.paper.state import PriceBook

RELIANCE = "NSE_EQ|INE002A01018"
NIFTY_CE = "NSE_FO|53113"
KOTAK_RELIANCE = "nse_cm|RELIANCE-EQ"

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_paper_app(seed=7, move_interval_s=0))


async def orders(client: Client) -> list[dict[str, Any]]:
    response = await client.get("/paper/orders")
    assert response.status == 200
    result: list[dict[str, Any]] = (await response.json())["orders"]
    return result


async def requests(client: Client) -> list[dict[str, Any]]:
    response = await client.get("/paper/requests")
    assert response.status == 200
    result: list[dict[str, Any]] = (await response.json())["requests"]
    return result


def jdata(payload: dict[str, Any]) -> dict[str, str]:
    return {"jData": orjson.dumps(payload).decode()}


UPSTOX_LIMIT = {
    "quantity": 1,
    "product": "D",
    "validity": "DAY",
    "price": 1400.5,
    "tag": "t1",
    "instrument_token": RELIANCE,
    "order_type": "LIMIT",
    "transaction_type": "BUY",
    "disclosed_quantity": 0,
    "trigger_price": 0,
    "is_amo": False,
}
KOTAK_LIMIT = {
    "am": "NO",
    "dq": "0",
    "es": "nse_cm",
    "mp": "0",
    "pc": "CNC",
    "pf": "N",
    "pr": "1400.50",
    "pt": "L",
    "qt": "1",
    "rt": "DAY",
    "tp": "0",
    "ts": "RELIANCE-EQ",
    "tt": "B",
    "ig": None,
}


async def test_health(client: Client) -> None:
    response = await client.get("/paper/health")
    assert response.status == 200
    assert await requests(client) == []


async def test_upstox_place_modify_cancel(client: Client) -> None:
    headers = {"X-Gateway-User-Id": "U1", "X-Algo-Id": "99999"}
    placed = await client.post("/v2/order/place", json=UPSTOX_LIMIT, headers=headers)
    assert placed.status == 200
    body = await placed.json()
    assert body["status"] == "success"
    v2_id = body["data"]["order_id"]

    placed = await client.post("/v3/order/place", json={**UPSTOX_LIMIT, "slice": False})
    body = await placed.json()
    assert set(body) == {"status", "data", "metadata"}
    [v3_id] = body["data"]["order_ids"]
    assert isinstance(body["metadata"]["latency"], int)

    modify = {"order_id": v2_id, "order_type": "SL", "price": 1399.0, "trigger_price": 1399.5}
    modified = await client.put("/v2/order/modify", json=modify)
    assert (await modified.json()) == {"status": "success", "data": {"order_id": v2_id}}
    modified = await client.put("/v3/order/modify", json={**modify, "order_id": v3_id})
    assert (await modified.json())["data"] == {"order_id": v3_id}

    cancelled = await client.delete("/v2/order/cancel", params={"order_id": v2_id})
    assert (await cancelled.json())["data"] == {"order_id": v2_id}
    cancelled = await client.delete("/v3/order/cancel", params={"order_id": v3_id})
    assert (await cancelled.json())["data"] == {"order_id": v3_id}

    got = await orders(client)
    assert [(o["method"], o["path"], o["order_id"]) for o in got] == [
        ("POST", "/v2/order/place", v2_id),
        ("POST", "/v3/order/place", v3_id),
        ("PUT", "/v2/order/modify", v2_id),
        ("PUT", "/v3/order/modify", v3_id),
        ("DELETE", "/v2/order/cancel", v2_id),
        ("DELETE", "/v3/order/cancel", v3_id),
    ]
    first = got[0]
    assert first["dialect"] == "upstox"
    assert first["body"] == UPSTOX_LIMIT
    assert first["headers"]["x-gateway-user-id"] == "U1"
    assert first["headers"]["x-algo-id"] == "99999"
    assert got[4]["query"] == {"order_id": v2_id}
    assert v2_id != v3_id


@pytest.mark.parametrize(
    ("method", "path", "order"),
    [
        ("POST", "/v2/order/place", {**UPSTOX_LIMIT, "order_type": "MARKET", "price": 0}),
        ("POST", "/v3/order/place", {**UPSTOX_LIMIT, "order_type": "MARKET", "is_amo": True}),
        ("POST", "/v2/order/place", {**UPSTOX_LIMIT, "order_type": "SL-M", "trigger_price": 1}),
        ("PUT", "/v2/order/modify", {"order_id": "1", "order_type": "MARKET"}),
        ("PUT", "/v3/order/modify", {"order_id": "1", "order_type": "SL-M"}),
    ],
)
async def test_upstox_refuses_market_orders(
    client: Client, method: str, path: str, order: dict[str, Any]
) -> None:
    response = await client.request(method, path, json=order)
    assert response.status == 400
    body = await response.json()
    assert body["status"] == "error"
    [error] = body["errors"]
    assert error["error_code"] == "UDAPI1158"
    assert set(error) == {"error_code", "message", "property_path", "invalid_value"}
    assert await orders(client) == []
    [seen] = await requests(client)
    assert (seen["path"], seen["body"]) == (path, order)


async def test_upstox_malformed_body(client: Client) -> None:
    response = await client.post(
        "/v2/order/place", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["errors"][0]["error_code"] == "UDAPI1000"
    [seen] = await requests(client)
    assert seen["body"] == "{oops"


async def test_upstox_multi_order_is_per_leg(client: Client) -> None:
    legs = [
        {**UPSTOX_LIMIT, "correlation_id": "a"},
        {**UPSTOX_LIMIT, "correlation_id": "b", "order_type": "MARKET"},
    ]
    response = await client.post("/v2/order/multi/place", json=legs)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "partial_success"
    [placed] = body["data"]
    assert placed["correlation_id"] == "a"
    assert [e["correlation_id"] for e in body["errors"]] == ["b"]
    assert body["summary"] == {"total": 2, "success": 1, "error": 1}

    cancelled = await client.delete("/v2/order/multi/cancel")
    assert (await cancelled.json())["data"] == {"order_ids": [placed["order_id"]]}
    again = await client.delete("/v2/order/multi/cancel")
    assert (await again.json())["data"] == {"order_ids": []}
    got = await orders(client)
    assert [o["order_ids"] for o in got] == [[placed["order_id"]], [placed["order_id"]], []]


async def test_upstox_multi_order_all_market_is_refused(client: Client) -> None:
    legs = [{**UPSTOX_LIMIT, "correlation_id": "a", "order_type": "MARKET"}]
    response = await client.post("/v2/order/multi/place", json=legs)
    assert response.status == 400
    assert await orders(client) == []


async def test_upstox_gtt_and_exit(client: Client) -> None:
    gtt = {
        "type": "SINGLE",
        "quantity": 1,
        "product": "D",
        "instrument_token": RELIANCE,
        "transaction_type": "BUY",
        "rules": [{"strategy": "ENTRY", "trigger_type": "BELOW", "trigger_price": 1300}],
    }
    placed = await client.post("/v3/order/gtt/place", json=gtt)
    [gtt_id] = (await placed.json())["data"]["gtt_order_ids"]
    assert gtt_id.startswith("GTT-")
    modified = await client.put("/v3/order/gtt/modify", json={**gtt, "gtt_order_id": gtt_id})
    assert (await modified.json())["data"]["gtt_order_ids"] == [gtt_id]
    cancelled = await client.delete("/v3/order/gtt/cancel", json={"gtt_order_id": gtt_id})
    assert (await cancelled.json())["data"]["gtt_order_ids"] == [gtt_id]
    exited = await client.post("/v2/order/positions/exit")
    assert (await exited.json())["data"] == {"order_ids": []}
    assert [o["path"] for o in await orders(client)] == [
        "/v3/order/gtt/place",
        "/v3/order/gtt/modify",
        "/v3/order/gtt/cancel",
        "/v2/order/positions/exit",
    ]


async def test_upstox_ltp_keyed_by_symbol_with_real_key_inside(client: Client) -> None:
    pushed = await client.put("/paper/ltp", json={RELIANCE: "1401.55", NIFTY_CE: 49.95})
    assert pushed.status == 204
    response = await client.get(
        "/v3/market-quote/ltp", params={"instrument_key": f"{RELIANCE},{NIFTY_CE},NSE_EQ|UNKNOWN"}
    )
    data = (await response.json())["data"]
    assert set(data) == {"NSE_EQ:RELIANCE", "NSE_FO:NIFTY 25500 CE 30 JUN 26"}
    reliance = data["NSE_EQ:RELIANCE"]
    assert reliance["instrument_token"] == RELIANCE
    assert Decimal(str(reliance["last_price"])) == Decimal("1401.55")
    assert {"ltq", "volume", "cp"} <= set(reliance)
    v2 = await client.get("/v2/market-quote/ltp", params={"instrument_key": NIFTY_CE})
    item = (await v2.json())["data"]["NSE_FO:NIFTY 25500 CE 30 JUN 26"]
    assert item == {"last_price": 49.95, "instrument_token": NIFTY_CE}
    assert await orders(client) == []


async def test_upstox_other_routes_echo_the_gateway_user(client: Client) -> None:
    response = await client.get("/v2/user/profile", headers={"X-Gateway-User-Id": "U9"})
    assert response.status == 200
    assert await response.json() == {
        "status": "success",
        "data": {"path": "/v2/user/profile", "user_id": "U9"},
    }
    anonymous = await client.get("/v3/portfolio/long-term-holdings")
    assert (await anonymous.json())["data"]["user_id"] is None
    [first, second] = await requests(client)
    assert (first["dialect"], second["dialect"]) == ("upstox", "upstox")


async def test_kotak_place_modify_cancel(client: Client) -> None:
    headers = {"X-Gateway-User-Id": "K1"}
    placed = await client.post("/quick/order/rule/ms/place", data=jdata(KOTAK_LIMIT))
    body = await placed.json()
    assert placed.status == 200
    assert (body["stat"], body["stCode"]) == ("Ok", 200)
    order_id = body["nOrdNo"]
    modify = {**KOTAK_LIMIT, "no": order_id, "tk": "2885", "vd": "DAY", "pr": "1399.00"}
    modified = await client.post("/quick/order/vr/modify", data=jdata(modify), headers=headers)
    assert (await modified.json())["nOrdNo"] == order_id
    cancelled = await client.post("/quick/order/cancel", data=jdata({"on": order_id, "am": "NO"}))
    assert await cancelled.json() == {"nOrdNo": order_id, "stat": "Ok", "stCode": 200}
    got = await orders(client)
    assert [(o["path"], o["order_id"]) for o in got] == [
        ("/quick/order/rule/ms/place", order_id),
        ("/quick/order/vr/modify", order_id),
        ("/quick/order/cancel", order_id),
    ]
    assert got[0]["dialect"] == "kotak"
    assert got[0]["body"] == {"jData": KOTAK_LIMIT}
    assert got[1]["headers"]["x-gateway-user-id"] == "K1"


@pytest.mark.parametrize(
    ("path", "order"),
    [
        ("/quick/order/rule/ms/place", {**KOTAK_LIMIT, "pt": "MKT", "pr": "0"}),
        ("/quick/order/rule/ms/place", {**KOTAK_LIMIT, "pt": "MKT", "am": "YES"}),
        ("/quick/order/rule/ms/place", {**KOTAK_LIMIT, "pt": "SL-M", "tp": "1390"}),
        ("/quick/order/vr/modify", {**KOTAK_LIMIT, "pt": "MKT", "no": "1"}),
    ],
)
async def test_kotak_refuses_market_orders(
    client: Client, path: str, order: dict[str, Any]
) -> None:
    response = await client.post(path, data=jdata(order))
    assert response.status == 400
    body = await response.json()
    assert (body["stCode"], body["stat"]) == (1039, "Not_Ok")
    assert body["errMsg"]
    assert await orders(client) == []
    [seen] = await requests(client)
    assert seen["body"] == {"jData": order}


async def test_kotak_malformed_jdata(client: Client) -> None:
    response = await client.post("/quick/order/rule/ms/place", data={"jData": "{nope"})
    assert response.status == 400
    assert (await response.json())["stat"] == "Not_Ok"
    [seen] = await requests(client)
    assert seen["body"] == {"jData": "{nope"}


async def test_kotak_quotes_by_segment_and_token(client: Client) -> None:
    await client.put("/paper/ltp", json={KOTAK_RELIANCE: "1402.30"})
    response = await client.get(
        "/script-details/1.0/quotes/neosymbol/nse_cm%7C2885,nse_fo|53113,nse_cm|999/ltp"
    )
    assert response.status == 200
    quotes = await response.json()
    assert [(q["exchange"], q["exchange_token"]) for q in quotes] == [
        ("nse_cm", "2885"),
        ("nse_fo", "53113"),
    ]
    assert quotes[0]["display_symbol"] == "RELIANCE-EQ"
    assert isinstance(quotes[0]["ltp"], str)
    assert Decimal(quotes[0]["ltp"]) == Decimal("1402.30")
    assert Decimal(quotes[1]["ltp"]) == Decimal("50")


async def test_kotak_other_routes_echo(client: Client) -> None:
    response = await client.get("/quick/user/orders", headers={"X-Gateway-User-Id": "K2"})
    body = await response.json()
    assert body["stat"] == "Ok"
    assert body["data"] == {"path": "/quick/user/orders", "user_id": "K2"}


async def test_paradex_orders(client: Client) -> None:
    order = {"market": "BTC-USD-PERP", "side": "BUY", "type": "MARKET", "size": "0.01"}
    placed = await client.post("/v1/orders", json=order, headers={"X-Gateway-User-Id": "P1"})
    assert placed.status == 201
    body = await placed.json()
    assert (body["status"], body["market"], body["side"], body["type"], body["size"]) == (
        "NEW",
        "BTC-USD-PERP",
        "BUY",
        "MARKET",
        "0.01",
    )
    limit = {**order, "type": "LIMIT", "price": "60000", "side": "SELL"}
    batch = await client.post("/v1/orders/batch", json=[limit, {"market": "X"}])
    assert batch.status == 201
    batch_body = await batch.json()
    [batched] = batch_body["orders"]
    assert batched["price"] == "60000"
    assert batch_body["errors"][0] is None
    assert batch_body["errors"][1]["error"] == "VALIDATION_ERROR"

    cancelled = await client.delete(f"/v1/orders/{body['id']}")
    assert cancelled.status == 204
    cancel_all = await client.delete("/v1/orders", params={"market": "BTC-USD-PERP"})
    assert cancel_all.status == 204
    got = await orders(client)
    assert [(o["method"], o["path"], o["order_ids"]) for o in got] == [
        ("POST", "/v1/orders", [body["id"]]),
        ("POST", "/v1/orders/batch", [batched["id"]]),
        ("DELETE", f"/v1/orders/{body['id']}", [body["id"]]),
        ("DELETE", "/v1/orders", [batched["id"]]),
    ]
    assert got[0]["dialect"] == "paradex"


async def test_paradex_invalid_order(client: Client) -> None:
    response = await client.post("/v1/orders", json={"market": "BTC-USD-PERP"})
    assert response.status == 400
    assert (await response.json())["error"] == "VALIDATION_ERROR"
    assert await orders(client) == []


async def test_paradex_other_routes_echo(client: Client) -> None:
    response = await client.get("/v1/positions", headers={"X-Gateway-User-Id": "P2"})
    assert await response.json() == {"path": "/v1/positions", "user_id": "P2"}


async def test_clearing_forgets_requests_and_orders(client: Client) -> None:
    await client.post("/v2/order/place", json=UPSTOX_LIMIT)
    assert len(await requests(client)) == 1
    cleared = await client.delete("/paper/requests")
    assert cleared.status == 204
    assert await requests(client) == []
    assert await orders(client) == []
    await client.get("/v2/user/profile")
    [entry] = await requests(client)
    assert entry["seq"] == 2
    assert set(entry) == {
        "seq",
        "dialect",
        "method",
        "path",
        "query",
        "headers",
        "body",
        "received_at",
        "source_ip",
    }
    assert entry["source_ip"] == "127.0.0.1"  # the test client's address


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'{"X": "abc"}', b'{"X": "-1"}', b'{"X": "NaN"}', b'{"X": true}', b"{"],
)
async def test_bad_ltp_push(client: Client, payload: bytes) -> None:
    response = await client.put("/paper/ltp", data=payload)
    assert response.status == 400


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/v2/order/place", "upstox"),
        ("/v3/market-quote/ltp", "upstox"),
        ("/quick/order/cancel", "kotak"),
        ("/script-details/1.0/quotes/neosymbol/x/ltp", "kotak"),
        ("/v1/orders", "paradex"),
        ("/other", "unknown"),
    ],
)
def test_dialect_of(path: str, dialect: str) -> None:
    assert dialect_of(path) == dialect


def test_random_walk_stays_on_the_grid_and_positive() -> None:
    book = PriceBook(sample_master())
    for instrument in sample_master():
        book.set(instrument.key, instrument.tick_size)
    book.set(RELIANCE, Decimal("1401.55"))
    book.set("NSE_EQ|NOT-IN-MASTER", Decimal("10.03"))
    rng = random.Random(42)
    moved = False
    for _ in range(500):
        before = {key: quote.price for key, quote in book}
        book.step(rng)
        for key, quote in book:
            tick = book.tick(key)
            assert quote.price > 0, key
            assert quote.price % tick == 0, (key, quote.price, tick)
            moved = moved or quote.price != before[key]
    assert moved
    assert book.tick("NSE_EQ|NOT-IN-MASTER") == Decimal("0.05")


def test_random_walk_is_deterministic_with_a_seed() -> None:
    def walk(seed: int) -> list[Decimal]:
        book = PriceBook(sample_master())
        book.set(RELIANCE, Decimal("1400"))
        rng = random.Random(seed)
        prices = []
        for _ in range(20):
            book.step(rng)
            quote = book.get(RELIANCE)
            assert quote is not None
            prices.append(quote.price)
        return prices

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)


async def test_background_task_moves_prices(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_paper_app(seed=1, move_interval_s=0.01))
    await client.put("/paper/ltp", json={RELIANCE: "1400.00"})
    for _ in range(200):
        await asyncio.sleep(0.01)
        response = await client.get("/paper/ltp")
        if (await response.json())[RELIANCE] != "1400.00":
            break
    else:
        pytest.fail("price never moved")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/nope", {"status": "error", "errors": [{"error_code": "UDAPI9404"}]}),
        ("/v3/user/profil", {"status": "error", "errors": [{"error_code": "UDAPI9404"}]}),
        ("/quick/user/nope", {"stCode": 404, "stat": "Not_Ok"}),
        ("/portfolio/v9/x", {"stCode": 404, "stat": "Not_Ok"}),
        ("/v1/nope", {"error": "NOT_FOUND"}),
    ],
)
async def test_unknown_routes_are_404_in_the_dialects_envelope(
    client: Client, path: str, body: dict[str, Any]
) -> None:
    response = await client.get(path)
    answer = await response.json()
    assert response.status == 404
    for key, value in body.items():
        if key == "errors":
            assert answer["errors"][0]["error_code"] == "UDAPI9404"
            assert path in answer["errors"][0]["message"]
        else:
            assert answer[key] == value
    [received] = await requests(client)  # still recorded: the test can see what arrived
    assert received["path"] == path


@pytest.mark.parametrize(
    "path",
    [
        "/v2/user/get-funds-and-margin",
        "/v2/portfolio/short-term-positions",
        "/v2/order/retrieve-all",
        "/v2/historical-candle/NSE_EQ|INE002A01018/day/2026-11-16",
        "/quick/user/trades",
        "/portfolio/v1/holdings",
        "/v1/account",
        "/v1/fills",
    ],
)
async def test_the_brokers_read_routes_answer(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
