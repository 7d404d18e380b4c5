"""The real Kotak Neo client (``kotakneoapi`` from PyPI, ``neo_api_client`` 3.0.9) against the
gateway, through the client's own request code.

How it is pointed at the gateway, without its TOTP login:
- ``NeoAPI(environment="prod")`` builds every URL as ``configuration.base_url`` + the path in
  ``settings.PROD_URL`` (``NeoUtility.get_url_details``); ``totp_validate`` normally sets
  ``base_url`` from Kotak's answer, so the test sets it to the gateway's URL.  The paths are
  SPEC's own (``quick/order/rule/ms/place``, ``quick/order/vr/modify``, ``quick/order/cancel``):
  no prefix to strip, no alias route needed.
- ``totp_validate`` also stores the session's token and sid as ``configuration.edit_token`` and
  ``edit_sid``, which every order call sends as ``Auth`` and ``Sid``; the test stores the
  gateway login's ``access_token`` and ``session_id`` there.
- The client's ``transport`` hook (an ``httpx.HTTPTransport``) binds the source address to
  127.0.0.2, the IP the account registers.  ``http2=False``: the gateway speaks HTTP/1.1.

The client is synchronous, so its calls run in a worker thread while the gateway serves on this
test's event loop.  Its file log is switched off (it would write ``logs/`` into the cwd).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import httpx
import pytest

from ..harness import Harness, Login

pytestmark = pytest.mark.sdk

KOTAK_RELIANCE = "nse_cm|RELIANCE-EQ"


def neo_client(gw: Harness, login: Login) -> Any:
    neo_api = importlib.import_module("neo_api_client")
    client = neo_api.NeoAPI(
        consumer_key="consumer-key-not-used-by-the-gateway",
        environment="prod",
        transport=httpx.HTTPTransport(local_address=login.ip),
        http2=False,
        timeout=10,
    )
    client.configuration.base_url = gw.url
    client.configuration.edit_token = login.token
    client.configuration.edit_sid = login.session_id
    return client


async def place_reliance(client: Any, **overrides: str) -> Any:
    """``place_order`` of one RELIANCE share, MARKET unless ``overrides`` say otherwise."""
    order = {
        "exchange_segment": "nse_cm",
        "product": "CNC",
        "price": "0",
        "order_type": "MKT",
        "quantity": "1",
        "validity": "DAY",
        "trading_symbol": "RELIANCE-EQ",
        "transaction_type": "B",
        **overrides,
    }
    return await asyncio.to_thread(lambda: client.place_order(**order))


@pytest.fixture(autouse=True)
def _no_sdk_file_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO_LOG_FILE_ENABLED", "false")


async def test_kotak_client_places_modifies_and_cancels_through_the_gateway(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    client = neo_client(gw, trader)

    placed = await place_reliance(client, tag="sdk-1")
    assert placed["stat"] == "Ok", placed
    order_id = placed["nOrdNo"]

    modified = await asyncio.to_thread(
        client.modify_order,
        order_id=order_id,
        price="1400.00",
        order_type="L",
        quantity="2",
        validity="DAY",
    )
    assert modified["stat"] == "Ok", modified

    cancelled = await asyncio.to_thread(client.cancel_order, order_id=order_id)
    assert cancelled["stat"] == "Ok", cancelled

    place, modify, cancel = await gw.upstream_orders()
    assert place["path"] == "/quick/order/rule/ms/place"
    assert place["headers"]["x-gateway-user-id"] == trader.user_id
    place_jdata = place["body"]["jData"]
    assert place_jdata["pt"] == "L"
    assert place_jdata["pr"] == "1408.5"  # 1401.5 + 0.5%, on the ₹0.10 grid
    assert place_jdata["ig"] == "sdk-1"
    assert place_jdata["os"] == "NEOTRADEAPI"
    assert modify["path"] == "/quick/order/vr/modify"
    assert modify["body"]["jData"]["no"] == order_id
    assert modify["body"]["jData"]["pt"] == "L"
    assert modify["body"]["jData"]["pr"] == "1400.00"
    assert cancel["path"] == "/quick/order/cancel"
    assert cancel["body"]["jData"] == {"on": order_id, "am": "NO"}
    for order in (place, modify, cancel):
        assert "auth" not in order["headers"]
        assert "authorization" not in order["headers"]


async def test_kotak_client_gets_kotaks_refusal_from_an_unregistered_ip(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    elsewhere = await gw.login(trader, ip="127.0.0.5")
    client = neo_client(gw, elsewhere)

    refused = await place_reliance(client, price="1400", order_type="L")

    assert refused == {"stCode": 100008, "errMsg": "unauthorized", "stat": "Not_Ok"}
    assert await gw.upstream_requests() == []


async def test_kotak_client_reads_its_order_book_through_the_gateway(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    client = neo_client(gw, trader)

    book = await asyncio.to_thread(client.order_report)

    assert book["data"] == {"path": "/quick/user/orders", "user_id": trader.user_id}
