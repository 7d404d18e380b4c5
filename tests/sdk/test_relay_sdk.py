"""The real Kotak Neo client (``neo_api_client`` 3.0.9) logs in through the gateway's login
relay (SPEC §14) and trades, changing nothing but its URLs.

``totp_login``/``totp_validate`` post to ``SESSION_PROD_BASE_URL`` (a module constant of
``neo_api_client.utils.neo_utility``), pointed here at the gateway; ``totp_validate`` then
takes ``baseUrl`` from the answer (the gateway's own URL) and sends every later call there with
the answer's ``token``/``sid`` as ``Auth``/``Sid``: the gateway's session, never the broker's.
The paper broker plays Kotak and binds its session to the address it was created from.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from ..conftest import GatewayFactory
from ..e2e.test_relay import (
    BROKER_ACCOUNT,
    CLIENT,
    EGRESS,
    UCC,
    broker_sessions,
    paper_call,
    setup,
)
from ..harness import RELIANCE
from .test_kotak_sdk import place_reliance

pytestmark = pytest.mark.sdk


@pytest.fixture(autouse=True)
def _no_sdk_file_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO_LOG_FILE_ENABLED", "false")


async def test_the_kotak_client_logs_in_through_the_gateway_and_places_a_market_order(
    make_gateway: GatewayFactory, paper: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = await setup(make_gateway, paper)
    client = neo_client_at(gw.url, CLIENT, monkeypatch)

    view = await asyncio.to_thread(
        client.totp_login, mobile_number="+919999999999", ucc=UCC, totp="123456"
    )
    assert view["data"]["kType"] == "View", view
    trade = await asyncio.to_thread(client.totp_validate, mpin="654321")
    assert trade["data"]["kType"] == "Trade", trade
    assert client.configuration.base_url == gw.url  # it keeps talking to the gateway

    placed = await place_reliance(client, tag="relay-1")
    assert placed["stat"] == "Ok", placed

    orders = [o for o in await gw.upstream_orders() if o["dialect"] == "kotak"]
    [order] = orders
    assert (order["source_ip"], order["body"]["jData"]["pt"]) == (EGRESS, "L")
    sessions = await broker_sessions(paper)
    assert [(s["kind"], s["ip"]) for s in sessions] == [("view", EGRESS), ("trade", EGRESS)]
    # the client never saw the broker's session: what it sends is the gateway's
    assert order["headers"]["auth"] != client.configuration.edit_token
    assert order["headers"]["sid"] != client.configuration.edit_sid


async def test_the_same_client_logged_in_directly_elsewhere_gets_1037(
    make_gateway: GatewayFactory, paper: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await paper_call(paper, "PUT", f"/paper/accounts/{UCC}", json=BROKER_ACCOUNT)
    direct = neo_client_at(str(paper.make_url("")).rstrip("/"), "127.0.0.3", monkeypatch)
    await asyncio.to_thread(
        direct.totp_login, mobile_number="+919999999999", ucc=UCC, totp="123456"
    )
    trade = await asyncio.to_thread(direct.totp_validate, mpin="654321")
    assert trade["data"]["kType"] == "Trade", trade
    # the session was born on 127.0.0.3; an order over it from the static IP is refused
    moved = neo_client_at(direct.configuration.base_url, EGRESS, monkeypatch)
    moved.configuration.base_url = direct.configuration.base_url
    moved.configuration.edit_token = direct.configuration.edit_token
    moved.configuration.edit_sid = direct.configuration.edit_sid
    placed = await place_reliance(moved, price="1400", order_type="L")
    assert placed == {
        "stCode": 1037,
        "errMsg": "session ip doesnt match with reqest ip",
        "stat": "Not_Ok",
    }


def neo_client_at(url: str, ip: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    neo_utility = importlib.import_module("neo_api_client.utils.neo_utility")
    monkeypatch.setattr(neo_utility, "SESSION_PROD_BASE_URL", url)
    neo_api = importlib.import_module("neo_api_client")
    return neo_api.NeoAPI(
        consumer_key="consumer-key-abc",
        environment="prod",
        transport=httpx.HTTPTransport(local_address=ip),
        http2=False,
        timeout=10,
    )


async def test_the_upstox_sdk_logs_in_through_the_relay_and_trades_from_the_egress(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    upstox_client = importlib.import_module("upstox_client")
    account = {"static_ips": [EGRESS], "api_key": "broker-app-key", "api_secret": "s3cret"}
    await paper_call(paper, "PUT", f"/paper/accounts/{UCC}", json=account)
    gw = await make_gateway(upstream_login_relay="true")
    login = await gw.login(await gw.account(UCC), ip="127.0.0.1")  # the SDK's address
    assert (await gw.set_ips(login, "127.0.0.1")).status == 200
    await gw.admin("PUT", f"/accounts/{UCC}/egress", {"ip": EGRESS})
    await gw.push_ltp({RELIANCE: "1401.5"})
    _, code = await paper_call(paper, "POST", f"/paper/accounts/{UCC}/code")

    def sdk(token: str | None = None) -> Any:
        configuration = upstox_client.Configuration()
        configuration.host = configuration.order_host = gw.url
        if token is not None:
            configuration.access_token = token
        return upstox_client.ApiClient(configuration)

    token = await asyncio.to_thread(
        upstox_client.LoginApi(sdk()).token,
        "2.0",
        code=code["code"],
        client_id="broker-app-key",
        client_secret="s3cret",
        redirect_uri="https://example.com/callback",
        grant_type="authorization_code",
    )
    assert token.user_id == UCC
    assert token.extended_token is None

    request = upstox_client.PlaceOrderRequest(
        quantity=1, product="D", validity="DAY", price=0.0, tag="relay", order_type="MARKET",
        instrument_token=RELIANCE, transaction_type="BUY", disclosed_quantity=0,
        trigger_price=0.0, is_amo=False,
    )  # fmt: skip
    placed = await asyncio.to_thread(
        upstox_client.OrderApi(sdk(token.access_token)).place_order, request, "2.0"
    )
    assert placed.status == "success"
    [order] = await gw.upstream_orders()
    assert (order["source_ip"], order["body"]["order_type"]) == (EGRESS, "LIMIT")
    assert order["headers"]["authorization"] != f"Bearer {token.access_token}"
    assert "x-gateway-user-id" not in order["headers"]
