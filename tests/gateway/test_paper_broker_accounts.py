"""The paper broker playing a broker (SPEC §14): broker accounts with registered static IPs,
both login flows in the brokers' shapes, sessions bound to the address they logged in from,
and the brokers' own refusals for orders from another address or over another's session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from gateway.paper import create_paper_app
from gateway.paper.broker import KOTAK_IP_MISMATCH, KOTAK_UNAUTHORIZED

KOTAK_LIMIT = {
    "am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "CNC", "pf": "N", "pr": "1400",
    "pt": "L", "qt": "1", "rt": "DAY", "tp": "0", "ts": "RELIANCE-EQ", "tt": "B",
}  # fmt: skip
UPSTOX_LIMIT = {
    "quantity": 1, "product": "D", "validity": "DAY", "price": 1400, "tag": "t",
    "instrument_token": "NSE_EQ|INE002A01018", "order_type": "LIMIT",
    "transaction_type": "BUY", "disclosed_quantity": 0, "trigger_price": 0, "is_amo": False,
}  # fmt: skip
ACCOUNT = {
    "static_ips": ["127.0.0.2"],
    "mobile_number": "+919999999999",
    "totp": "123456",
    "mpin": "654321",
    "api_key": "upstox-key",
    "api_secret": "upstox-secret",
    "name": "Asha",
}


class Broker:
    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, ip: str) -> aiohttp.ClientSession:
        if ip not in self.sessions:
            connector = aiohttp.TCPConnector(local_addr=(ip, 0), force_close=True)
            self.sessions[ip] = aiohttp.ClientSession(connector=connector)
        return self.sessions[ip]

    async def call(self, method: str, path: str, *, ip: str = "127.0.0.1", **kw: Any) -> Any:
        async with self.session(ip).request(method, str(self.server.make_url(path)), **kw) as r:
            body = await r.read()
            return r.status, orjson.loads(body) if body else None

    async def kotak_login(self, ip: str, **overrides: str) -> tuple[int, Any]:
        body = {"mobileNumber": "+919999999999", "ucc": "AB123", "totp": "123456", **overrides}
        headers = {"Authorization": "consumer-key", "neo-fin-key": "neotradeapi"}
        status, data = await self.call(
            "POST", "/login/1.0/tradeApiLogin", ip=ip, json=body, headers=headers
        )
        return int(status), data

    async def kotak_trade_session(self, ip: str) -> dict[str, Any]:
        status, view = await self.kotak_login(ip)
        assert status == 200, view
        headers = {"Authorization": "consumer-key", "sid": view["data"]["sid"]}
        headers["Auth"] = view["data"]["token"]
        status, trade = await self.call(
            "POST", "/login/1.0/tradeApiValidate", ip=ip, json={"mpin": "654321"}, headers=headers
        )
        assert status == 200, trade
        return dict(trade["data"])

    async def kotak_place(self, ip: str, token: str, sid: str) -> tuple[int, Any]:
        status, data = await self.call(
            "POST",
            "/quick/order/rule/ms/place",
            ip=ip,
            data={"jData": orjson.dumps(KOTAK_LIMIT).decode()},
            headers={"Auth": token, "Sid": sid, "neo-fin-key": "neotradeapi"},
        )
        return int(status), data

    async def upstox_token(self, ip: str = "127.0.0.9", **overrides: str) -> tuple[int, Any]:
        _, code = await self.call("POST", "/paper/accounts/AB123/code")
        form = {
            "code": code["code"],
            "client_id": "upstox-key",
            "client_secret": "upstox-secret",
            "redirect_uri": "https://example.com/cb",
            "grant_type": "authorization_code",
            **overrides,
        }
        status, data = await self.call("POST", "/v2/login/authorization/token", ip=ip, data=form)
        return int(status), data

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


@pytest.fixture
async def broker(aiohttp_server: AiohttpServer) -> AsyncIterator[Broker]:
    server = await aiohttp_server(create_paper_app(seed=7, move_interval_s=0))
    b = Broker(server)
    status, _ = await b.call("PUT", "/paper/accounts/AB123", json=ACCOUNT)
    assert status == 204
    yield b
    await b.close()


# kotak -----------------------------------------------------------------------------------------


async def test_kotak_login_and_validate_answer_the_clients_shapes(broker: Broker) -> None:
    status, view = await broker.kotak_login("127.0.0.2")
    assert status == 200
    assert view["data"]["kType"] == "View"
    assert view["data"]["ucc"] == "AB123"
    assert {"token", "sid", "status"} <= set(view["data"])
    trade = await broker.kotak_trade_session("127.0.0.2")
    assert trade["kType"] == "Trade"
    assert trade["baseUrl"] == str(broker.server.make_url("")).rstrip("/")
    assert {"token", "sid", "rid", "ucc"} <= set(trade)
    assert "dataCenter" not in trade  # the client would call Kotak's config service with one


@pytest.mark.parametrize(
    "overrides", [{"totp": "000000"}, {"ucc": "NOPE"}, {"mobileNumber": "+910000000000"}]
)
async def test_a_wrong_login_is_refused_and_opens_nothing(
    broker: Broker, overrides: dict[str, str]
) -> None:
    status, data = await broker.kotak_login("127.0.0.2", **overrides)
    assert status == 401
    assert data["error"][0]["code"] == "401"
    _, listed = await broker.call("GET", "/paper/accounts")
    assert listed["accounts"][0]["sessions"] == []


async def test_a_kotak_session_serves_orders_only_from_its_address(broker: Broker) -> None:
    trade = await broker.kotak_trade_session("127.0.0.2")
    status, placed = await broker.kotak_place("127.0.0.2", trade["token"], trade["sid"])
    assert (status, placed["stat"]) == (200, "Ok")
    status, refused = await broker.kotak_place("127.0.0.3", trade["token"], trade["sid"])
    assert (status, refused) == (401, KOTAK_IP_MISMATCH)
    assert refused == {
        "stCode": 1037,
        "errMsg": "session ip doesnt match with reqest ip",
        "stat": "Not_Ok",
    }
    _, orders = await broker.call("GET", "/paper/orders")
    assert [o["source_ip"] for o in orders["orders"]] == ["127.0.0.2"]


async def test_validate_from_another_address_and_bad_credentials_are_refused(
    broker: Broker,
) -> None:
    status, view = await broker.kotak_login("127.0.0.2")
    headers = {"sid": view["data"]["sid"], "Auth": view["data"]["token"]}
    status, moved = await broker.call(
        "POST", "/login/1.0/tradeApiValidate", ip="127.0.0.3", json={"mpin": "654321"},
        headers=headers,
    )  # fmt: skip
    assert (status, moved) == (401, KOTAK_IP_MISMATCH)
    status, wrong_pin = await broker.call(
        "POST", "/login/1.0/tradeApiValidate", ip="127.0.0.2", json={"mpin": "111111"},
        headers=headers,
    )  # fmt: skip
    assert status == 401
    assert wrong_pin["error"][0]["message"] == "Invalid MPIN"
    # the view token is no trade session, and an unknown token is nothing
    status, viewed = await broker.kotak_place("127.0.0.2", view["data"]["token"], headers["sid"])
    assert (status, viewed) == (401, KOTAK_UNAUTHORIZED)
    status, unknown = await broker.kotak_place("127.0.0.2", "forged", "forged")
    assert (status, unknown) == (
        401,
        {"stCode": 100008, "errMsg": "unauthorized", "stat": "Not_Ok"},
    )


# upstox ----------------------------------------------------------------------------------------


async def test_upstox_token_answers_the_token_response_shape(broker: Broker) -> None:
    status, token = await broker.upstox_token()
    assert status == 200, token
    assert token["user_id"] == "AB123"
    assert {"access_token", "extended_token", "user_name", "broker", "is_active"} <= set(token)


async def test_an_upstox_code_is_used_once_and_needs_the_apps_secret(broker: Broker) -> None:
    status, refused = await broker.upstox_token(client_secret="wrong")
    assert status == 401
    assert refused["errors"][0]["errorCode"] == "UDAPI100057"
    status, _ = await broker.upstox_token(code="never-issued")
    assert status == 401
    _, code = await broker.call("POST", "/paper/accounts/AB123/code")
    form = {"code": code["code"], "client_id": "upstox-key", "client_secret": "upstox-secret"}
    first, _ = await broker.call("POST", "/v2/login/authorization/token", data=form)
    again, _ = await broker.call("POST", "/v2/login/authorization/token", data=form)
    assert (first, again) == (200, 401)


async def test_upstox_orders_come_only_from_a_registered_static_ip(broker: Broker) -> None:
    _, token = await broker.upstox_token()  # logins may come from anywhere
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    status, placed = await broker.call(
        "POST", "/v2/order/place", ip="127.0.0.2", json=UPSTOX_LIMIT, headers=bearer
    )
    assert (status, placed["status"]) == (200, "success")
    status, refused = await broker.call(
        "POST", "/v2/order/place", ip="127.0.0.3", json=UPSTOX_LIMIT, headers=bearer
    )
    assert status == 403
    assert refused["errors"][0]["errorCode"] == "UDAPI1154"
    status, forged = await broker.call(
        "POST", "/v2/order/place", ip="127.0.0.2", json=UPSTOX_LIMIT,
        headers={"Authorization": "Bearer forged"},
    )  # fmt: skip
    assert (status, forged["errors"][0]["errorCode"]) == (401, "UDAPI100050")


# what stays as it was ----------------------------------------------------------------------------


async def test_the_gateways_identity_still_passes_from_any_address(broker: Broker) -> None:
    status, placed = await broker.call(
        "POST", "/v2/order/place", ip="127.0.0.3", json=UPSTOX_LIMIT,
        headers={"X-Gateway-User-Id": "U1"},
    )  # fmt: skip
    assert (status, placed["status"]) == (200, "success")


async def test_without_broker_accounts_nothing_is_checked(aiohttp_server: AiohttpServer) -> None:
    plain = Broker(await aiohttp_server(create_paper_app(seed=7, move_interval_s=0)))
    try:
        status, placed = await plain.call(
            "POST", "/v2/order/place", ip="127.0.0.3", json=UPSTOX_LIMIT,
            headers={"Authorization": "Bearer anything"},
        )  # fmt: skip
        assert status == 200, placed
    finally:
        await plain.close()


async def test_a_bad_account_registration_is_400(broker: Broker) -> None:
    status, data = await broker.call("PUT", "/paper/accounts/X", json={"static_ips": "1.2.3.4"})
    assert status == 400
    assert "static_ips" in data["message"]
    status, data = await broker.call(
        "PUT", "/paper/accounts/X", json={"static_ips": [], "totp": 123456}
    )
    assert (status, data["message"]) == (400, "totp must be a string")
    status, _ = await broker.call("POST", "/paper/accounts/NOPE/code")
    assert status == 404
