"""The real Upstox SDK (upstox-python-sdk from PyPI) against the gateway, unchanged.

The SDK is synchronous, so its calls run in a worker thread while the gateway and the paper
broker serve on this test's event loop.  It connects from 127.0.0.1, which is therefore the
IP the account registers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import upstox_client
from upstox_client.rest import ApiException

from ..harness import RELIANCE, Harness

pytestmark = pytest.mark.sdk


def sdk_client(gw: Harness, token: str | None = None) -> upstox_client.ApiClient:
    configuration = upstox_client.Configuration()
    configuration.host = gw.url
    configuration.order_host = gw.url
    if token is not None:
        configuration.access_token = token
    return upstox_client.ApiClient(configuration)


def order_request(**fields: Any) -> Any:
    """A delivery BUY of one RELIANCE share through the SDK's own model."""
    order: dict[str, Any] = {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "tag": "sdk",
        "instrument_token": RELIANCE,
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0.0,
        "is_amo": False,
        **fields,
    }
    return upstox_client.PlaceOrderRequest(**order)


def sdk_login(gw: Harness, api_key: str, api_secret: str) -> Any:
    return upstox_client.LoginApi(sdk_client(gw)).token(
        "2.0",
        code="paper-code",
        client_id=api_key,
        client_secret=api_secret,
        redirect_uri="http://127.0.0.1/callback",
        grant_type="authorization_code",
    )


async def test_sdk_logs_in_registers_ips_and_places_a_market_order(gw: Harness) -> None:
    account = await gw.account()
    await gw.push_ltp({RELIANCE: "1401.5"})

    token = await asyncio.to_thread(sdk_login, gw, account.api_key, account.api_secret)
    assert token.user_id == account.user_id
    assert token.access_token

    users = upstox_client.UserApi(sdk_client(gw, token.access_token))
    before = await asyncio.to_thread(users.get_user_ips)
    assert before.data.primary_ip is None

    update = upstox_client.UpdateUserIpRequest(primary_ip="127.0.0.1", secondary_ip="127.0.0.9")
    changed = await asyncio.to_thread(users.update_user_ip, update)
    assert changed.data.primary_ip == "127.0.0.1"
    assert changed.data.secondary_ip == "127.0.0.9"

    # The change invalidated the SDK's token: it must log in again from the registered IP.
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(users.get_user_ips)
    assert refused.value.status == 401

    token = await asyncio.to_thread(sdk_login, gw, account.api_key, account.api_secret)
    orders = upstox_client.OrderApi(sdk_client(gw, token.access_token))
    request = order_request(order_type="MARKET", price=0.0)
    placed = await asyncio.to_thread(orders.place_order, request, "2.0")
    assert placed.status == "success"

    [arrived] = await gw.upstream_orders()
    assert arrived["order_id"] == placed.data.order_id
    assert arrived["body"]["order_type"] == "LIMIT"
    assert arrived["body"]["price"] == 1408.5
    assert arrived["headers"]["x-gateway-user-id"] == account.user_id
    assert "authorization" not in arrived["headers"]


async def test_sdk_sees_the_static_ip_refusal(gw: Harness) -> None:
    account = await gw.account()
    token = await asyncio.to_thread(sdk_login, gw, account.api_key, account.api_secret)
    users = upstox_client.UserApi(sdk_client(gw, token.access_token))
    await asyncio.to_thread(
        users.update_user_ip, upstox_client.UpdateUserIpRequest(primary_ip="127.0.0.2")
    )
    token = await asyncio.to_thread(sdk_login, gw, account.api_key, account.api_secret)

    orders = upstox_client.OrderApi(sdk_client(gw, token.access_token))
    request = order_request(order_type="LIMIT", price=100.0)
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(orders.place_order, request, "2.0")
    assert refused.value.status == 403
    assert b"UDAPI1154" in refused.value.body
    assert await gw.upstream_orders() == []
