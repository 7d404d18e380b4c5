"""The upstox login relay (SPEC §14): ``POST /v2/login/authorization/token`` with a
``client_id`` that is no gateway app is the broker's login, relayed; the broker's access token
becomes the account's upstox credential and the client gets a gateway session instead."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer

from ..conftest import GatewayFactory
from ..harness import Harness, Login
from .test_relay import CLIENT, EGRESS, UCC, paper_call

UPSTOX_ACCOUNT = {
    "static_ips": [EGRESS],
    "api_key": "broker-app-key",
    "api_secret": "broker-app-secret",
    "name": "Asha",
}
LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


async def setup(make_gateway: GatewayFactory, paper: TestServer) -> tuple[Harness, Login]:
    status, _ = await paper_call(paper, "PUT", f"/paper/accounts/{UCC}", json=UPSTOX_ACCOUNT)
    assert status == 204
    gw = await make_gateway(upstream_login_relay="true")
    login = await gw.login(await gw.account(UCC), ip=CLIENT)
    assert (await gw.set_ips(login, CLIENT)).status == 200
    assert (await gw.admin("PUT", f"/accounts/{UCC}/egress", {"ip": EGRESS})).status == 200
    return gw, login


async def token_form(paper: TestServer, **overrides: str) -> dict[str, str]:
    _, code = await paper_call(paper, "POST", f"/paper/accounts/{UCC}/code")
    return {
        "code": code["code"],
        "client_id": "broker-app-key",
        "client_secret": "broker-app-secret",
        "redirect_uri": "https://example.com/callback",
        "grant_type": "authorization_code",
        **overrides,
    }


async def test_the_broker_token_is_kept_and_orders_carry_it_from_the_egress(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw, _ = await setup(make_gateway, paper)
    reply = await gw.request(
        "POST", "/v2/login/authorization/token", ip=CLIENT, data=await token_form(paper)
    )
    assert reply.status == 200, reply.body
    assert reply.data["user_id"] == UCC
    assert "extended_token" not in reply.data
    client = Login(UCC, "", "", reply.data["access_token"], "", CLIENT)

    placed = await gw.place(client, **LIMIT)
    assert placed.status == 200, placed.body
    [order] = await gw.upstream_orders()
    assert order["source_ip"] == EGRESS
    bearer = order["headers"]["authorization"]
    assert bearer.startswith("Bearer ") and client.token not in bearer
    assert "x-gateway-user-id" not in order["headers"]
    [login_request] = [r for r in await gw.upstream_requests() if "login" in r["path"]]
    assert login_request["source_ip"] == "127.0.0.1"  # names no account: the default route
    accounts = await gw.admin("GET", "/accounts")
    [mine] = [a for a in accounts.data["data"] if a["user_id"] == UCC]
    assert set(mine["broker_sessions"]) == {"upstox"}
    assert bearer.removeprefix("Bearer ") not in str(accounts.data)


async def test_from_an_address_the_broker_does_not_know_its_orders_get_udapi1154(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw, _ = await setup(make_gateway, paper)
    await gw.admin("PUT", f"/accounts/{UCC}/egress", {"ip": "127.0.0.6"})  # not registered
    reply = await gw.request(
        "POST", "/v2/login/authorization/token", ip=CLIENT, data=await token_form(paper)
    )
    client = Login(UCC, "", "", reply.data["access_token"], "", CLIENT)
    placed = await gw.place(client, **LIMIT)
    assert placed.status == 403
    assert placed.data["errors"][0]["errorCode"] == "UDAPI1154"


async def test_a_broker_refusal_goes_back_unchanged(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw, _ = await setup(make_gateway, paper)
    form = await token_form(paper, client_secret="wrong")
    reply = await gw.request("POST", "/v2/login/authorization/token", ip=CLIENT, data=form)
    assert reply.status == 401
    assert reply.data["errors"][0]["errorCode"] == "UDAPI100057"
    accounts = await gw.admin("GET", "/accounts")
    assert all(a["broker_sessions"] == {} for a in accounts.data["data"])


async def test_a_gateway_app_still_logs_in_to_the_gateway(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw, login = await setup(make_gateway, paper)
    form = {"client_id": login.api_key, "client_secret": login.api_secret, "code": "x"}
    reply = await gw.request("POST", "/v2/login/authorization/token", ip=CLIENT, data=form)
    assert reply.status == 200, reply.body
    assert reply.data["user_id"] == UCC
    assert await gw.upstream_requests() == []  # nothing went to the broker


async def test_a_broker_session_for_no_account_here_is_refused_and_on_the_record(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw, _ = await setup(make_gateway, paper)
    stranger = {**UPSTOX_ACCOUNT, "api_key": "other-app-key", "api_secret": "other-secret"}
    assert (await paper_call(paper, "PUT", "/paper/accounts/ZZ999", json=stranger))[0] == 204
    _, code = await paper_call(paper, "POST", "/paper/accounts/ZZ999/code")
    form = {
        **(await token_form(paper)),
        "code": code["code"],
        "client_id": "other-app-key",
        "client_secret": "other-secret",
    }

    reply = await gw.request("POST", "/v2/login/authorization/token", ip=CLIENT, data=form)

    assert reply.status == 403, reply.body
    audit = await gw.admin("GET", "/audit")
    relayed = [r for r in audit.data["data"] if r["decision"] == "relayed_login"]
    assert [
        (r["step"], r["user_id"], r["broker_status"], r["broker_session_kept"]) for r in relayed
    ] == [("upstox_token", None, 200, False)]
