"""The kotak login relay (SPEC §14): the broker's own TOTP login, made through the gateway,
reaches the broker from the account's egress address, so the broker session is born on the
static IP; the gateway keeps it, answers with its own session, and sends the account's orders
over it from that address.  The paper broker plays Kotak: it binds sessions to addresses."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway.paper.app import create_paper_app

from ..conftest import GatewayFactory
from ..harness import Harness, Login, Reply
from .conftest import KOTAK_RELIANCE, Kotak

UCC = "AB123"
EGRESS = "127.0.0.5"
CLIENT = "127.0.0.2"
BROKER_ACCOUNT = {
    "static_ips": [EGRESS],
    "mobile_number": "+919999999999",
    "totp": "123456",
    "mpin": "654321",
    "name": "Asha",
}
CONSUMER = {"Authorization": "consumer-key-abc", "neo-fin-key": "neotradeapi"}
LOGIN_BODY = {"mobileNumber": "+919999999999", "ucc": UCC, "totp": "123456"}


async def paper_call(paper: TestServer, method: str, path: str, **kw: Any) -> Any:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, str(paper.make_url(path)), **kw) as r,
    ):
        body = await r.read()
        return r.status, orjson.loads(body) if body else None


async def setup(make_gateway: GatewayFactory, paper: TestServer, **env: str) -> Harness:
    status, _ = await paper_call(paper, "PUT", f"/paper/accounts/{UCC}", json=BROKER_ACCOUNT)
    assert status == 204
    gw = await make_gateway(upstream_login_relay="true", **env)
    login = await gw.login(await gw.account(UCC), ip=CLIENT)
    assert (await gw.set_ips(login, CLIENT)).status == 200
    assert (await gw.admin("PUT", f"/accounts/{UCC}/egress", {"ip": EGRESS})).status == 200
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    return gw


async def first_step(gw: Harness, ip: str = CLIENT) -> tuple[dict[str, Any], dict[str, str]]:
    """``tradeApiLogin`` as neo_api_client sends it; its answer and the second step's headers."""
    view = await gw.request(
        "POST", "/login/1.0/tradeApiLogin", ip=ip, json=LOGIN_BODY, headers=CONSUMER
    )
    assert view.status == 200, view.body
    headers = {**CONSUMER, "sid": view.data["data"]["sid"], "Auth": view.data["data"]["token"]}
    return view.data, headers


async def second_step(gw: Harness, headers: dict[str, str], ip: str = CLIENT) -> Reply:
    return await gw.request(
        "POST", "/login/1.0/tradeApiValidate", ip=ip, json={"mpin": "654321"}, headers=headers
    )


async def relayed_login(gw: Harness, ip: str = CLIENT) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both steps as neo_api_client sends them; (first answer, second answer)."""
    view, headers = await first_step(gw, ip)
    trade = await second_step(gw, headers, ip)
    assert trade.status == 200, trade.body
    return view, trade.data


async def broker_sessions(paper: TestServer) -> list[dict[str, Any]]:
    _, listed = await paper_call(paper, "GET", "/paper/accounts")
    return list(listed["accounts"][0]["sessions"])


async def test_the_broker_session_is_born_on_the_egress_and_orders_ride_it(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    view, trade = await relayed_login(gw)

    assert view["data"]["kType"] == "View"  # the first step passes through as it is
    data = trade["data"]
    assert data["kType"] == "Trade"
    assert data["baseUrl"] == gw.url  # no server.public_url: the URL the client used
    sessions = await broker_sessions(paper)
    assert [(s["kind"], s["ip"]) for s in sessions] == [("view", EGRESS), ("trade", EGRESS)]
    # the client holds the gateway's session, never the broker's
    requests = await gw.upstream_requests()
    broker_answer_tokens = {r["path"]: r for r in requests}
    assert set(broker_answer_tokens) == {"/login/1.0/tradeApiLogin", "/login/1.0/tradeApiValidate"}
    assert all(r["source_ip"] == EGRESS for r in requests)
    client = Login(UCC, "", "", data["token"], data["sid"], CLIENT)

    placed = await Kotak(gw).place(client)  # a MKT order
    assert placed.status == 200, placed.body
    [order] = await Kotak(gw).upstream_kotak_orders()
    assert order["source_ip"] == EGRESS
    assert order["body"]["jData"]["pt"] == "L"  # converted by the protection grid
    headers = order["headers"]
    assert "x-gateway-user-id" not in headers
    assert headers["authorization"] == CONSUMER["Authorization"]
    assert headers["auth"] != client.token and headers["sid"] != client.session_id
    assert client.token not in str(order)

    accounts = await gw.admin("GET", "/accounts")
    [mine] = [a for a in accounts.data["data"] if a["user_id"] == UCC]
    assert set(mine["broker_sessions"]) == {"kotak"}
    assert mine["broker_sessions"]["kotak"]["since"]
    assert headers["auth"] not in str(accounts.data)  # never the value
    # the trader sees it too (the console's sessions view), held since when, never the value
    own = await gw.request(
        "GET",
        "/gateway/v1/sessions",
        ip=CLIENT,
        headers={"Auth": client.token, "Sid": client.session_id},
    )
    assert own.status == 200, own.body
    assert set(own.data["data"]["broker_sessions"]) == {"kotak"}
    assert own.data["data"]["broker_sessions"]["kotak"]["since"]
    assert headers["auth"] not in str(own.data) and headers["sid"] not in str(own.data)
    audit = await gw.admin("GET", f"/audit?user_id={UCC}")
    relayed = [r for r in audit.data["data"] if r["decision"] == "relayed_login"]
    assert [(r["step"], r["egress_ip"], r["client_ip"], r["broker_status"]) for r in relayed] == [
        ("kotak_validate", EGRESS, CLIENT, 200),
        ("kotak_login", EGRESS, CLIENT, 200),
    ]
    assert headers["auth"] not in str(audit.data)


async def test_the_public_url_is_the_answers_base_url(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper, server_public_url="https://gw.example.com:8443")
    _, trade = await relayed_login(gw)
    assert trade["data"]["baseUrl"] == "https://gw.example.com:8443"


async def test_a_broker_refusal_goes_back_unchanged_and_nothing_is_kept(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    wrong = await gw.request(
        "POST",
        "/login/1.0/tradeApiLogin",
        ip=CLIENT,
        json={**LOGIN_BODY, "totp": "000000"},
        headers=CONSUMER,
    )
    assert wrong.status == 401
    assert wrong.data == {"error": [{"code": "401", "message": "Invalid TOTP"}]}
    view = await gw.request(
        "POST", "/login/1.0/tradeApiLogin", ip=CLIENT, json=LOGIN_BODY, headers=CONSUMER
    )
    headers = {**CONSUMER, "sid": view.data["data"]["sid"], "Auth": view.data["data"]["token"]}
    bad_pin = await gw.request(
        "POST", "/login/1.0/tradeApiValidate", ip=CLIENT, json={"mpin": "1"}, headers=headers
    )
    assert (bad_pin.status, bad_pin.data["error"][0]["message"]) == (401, "Invalid MPIN")
    accounts = await gw.admin("GET", "/accounts")
    assert all(a["broker_sessions"] == {} for a in accounts.data["data"])


async def test_an_unknown_client_code_is_403_and_nothing_is_relayed(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    reply = await gw.request(
        "POST",
        "/login/1.0/tradeApiLogin",
        ip=CLIENT,
        json={**LOGIN_BODY, "ucc": "ZZ999"},
        headers=CONSUMER,
    )
    assert reply.status == 403
    assert "ZZ999" in reply.message
    assert await gw.upstream_requests() == []
    unknown = await gw.request(
        "POST",
        "/login/1.0/tradeApiValidate",
        ip=CLIENT,
        json={"mpin": "654321"},
        headers={**CONSUMER, "sid": "s", "Auth": "never-issued"},
    )
    assert unknown.status == 401
    assert await gw.upstream_requests() == []


async def test_the_broker_user_id_names_the_account(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    status, _ = await paper_call(paper, "PUT", "/paper/accounts/XY987", json=BROKER_ACCOUNT)
    assert status == 204
    gw = await setup(make_gateway, paper)
    set_code = await gw.admin("PUT", f"/accounts/{UCC}/broker-user-id", {"broker_user_id": "XY987"})
    assert set_code.status == 200, set_code.body
    view = await gw.request(
        "POST",
        "/login/1.0/tradeApiLogin",
        ip=CLIENT,
        json={**LOGIN_BODY, "ucc": "XY987"},
        headers=CONSUMER,
    )
    assert view.status == 200, view.body
    # now that the account is the broker's XY987, AB123 names nobody here
    assert (
        await gw.request(
            "POST", "/login/1.0/tradeApiLogin", ip=CLIENT, json=LOGIN_BODY, headers=CONSUMER
        )
    ).status == 403
    bad = await gw.admin("PUT", f"/accounts/{UCC}/broker-user-id", {"broker_user_id": 7})
    assert bad.status == 400


async def test_an_ip_change_or_a_new_egress_ends_the_kept_session(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    await relayed_login(gw)
    await gw.admin(
        "PUT", f"/accounts/{UCC}/ip", {"primary_ip": CLIENT, "secondary_ip": "127.0.0.3"}
    )
    accounts = await gw.admin("GET", "/accounts")
    [mine] = [a for a in accounts.data["data"] if a["user_id"] == UCC]
    assert mine["broker_sessions"] == {}

    _, trade2 = await relayed_login(gw)  # a new login holds again
    again = await gw.admin("GET", "/accounts")
    assert [set(a["broker_sessions"]) for a in again.data["data"] if a["user_id"] == UCC] == [
        {"kotak"}
    ]
    client = Login(UCC, "", "", trade2["data"]["token"], trade2["data"]["sid"], CLIENT)
    await gw.admin("PUT", f"/accounts/{UCC}/egress", {"ip": "127.0.0.6"})
    placed = await Kotak(gw).place(client)
    assert placed.status == 200, placed.body
    last = (await Kotak(gw).upstream_kotak_orders())[-1]
    # the broker session from 127.0.0.5 is not sent from 127.0.0.6: the gateway's identity is
    assert last["source_ip"] == "127.0.0.6"
    assert "auth" not in last["headers"]
    assert last["headers"]["x-gateway-user-id"] == UCC


async def test_the_daily_logout_ends_it(make_gateway: GatewayFactory, paper: TestServer) -> None:
    gw = await setup(make_gateway, paper)
    await relayed_login(gw)
    gw.clock.advance(24 * 3600)
    accounts = await gw.admin("GET", "/accounts")
    [mine] = [a for a in accounts.data["data"] if a["user_id"] == UCC]
    assert mine["broker_sessions"] == {}


async def test_a_session_made_directly_elsewhere_is_refused_by_the_broker_with_1037(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    # the same client logs in at the broker directly, from its own address
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(CLIENT, 0), force_close=True)
    ) as direct:
        url = str(paper.make_url("/login/1.0/tradeApiLogin"))
        async with direct.post(url, json=LOGIN_BODY, headers=CONSUMER) as r:
            view = (await r.json())["data"]
        url = str(paper.make_url("/login/1.0/tradeApiValidate"))
        headers = {**CONSUMER, "sid": view["sid"], "Auth": view["token"]}
        async with direct.post(url, json={"mpin": "654321"}, headers=headers) as r:
            trade = (await r.json())["data"]
    # pasted into the gateway by hand, its orders leave from the egress address
    pasted = {"headers": {"Auth": trade["token"], "Sid": trade["sid"]}}
    assert (await gw.admin("PUT", f"/accounts/{UCC}/upstream-auth/kotak", pasted)).status == 204
    login = await gw.login(Login(UCC, *(await app_of(gw))), ip=CLIENT)
    placed = await Kotak(gw).place(login)
    assert placed.status == 401
    assert placed.data == {
        "stCode": 1037,
        "errMsg": "session ip doesnt match with reqest ip",
        "stat": "Not_Ok",
    }


async def app_of(gw: Harness) -> tuple[str, str]:
    app = await gw.admin("POST", f"/accounts/{UCC}/apps")
    return app.data["api_key"], app.data["api_secret"]


async def test_logins_go_to_kotak_login_and_orders_to_the_base_url_it_returned(
    aiohttp_server: Any, make_gateway: GatewayFactory, paper: TestServer
) -> None:
    # upstream.kotak (``paper``) is not where this account's session lives: the login host
    # hands out its own address as the baseUrl, and the account's orders must follow it
    login_host: TestServer = await aiohttp_server(create_paper_app(move_interval_s=0))
    status, _ = await paper_call(login_host, "PUT", f"/paper/accounts/{UCC}", json=BROKER_ACCOUNT)
    assert status == 204
    gw = await setup(
        make_gateway, paper, upstream_kotak_login=str(login_host.make_url("")).rstrip("/")
    )
    _, trade = await relayed_login(gw)
    client = Login(UCC, "", "", trade["data"]["token"], trade["data"]["sid"], CLIENT)
    placed = await Kotak(gw).place(client)
    assert placed.status == 200, placed.body

    assert [r["path"] for r in await gw.upstream_requests()] == []  # nothing on upstream.kotak
    _, on_login_host = await paper_call(login_host, "GET", "/paper/requests")
    assert [(r["path"], r["source_ip"]) for r in on_login_host["requests"]] == [
        ("/login/1.0/tradeApiLogin", EGRESS),
        ("/login/1.0/tradeApiValidate", EGRESS),
        ("/quick/order/rule/ms/place", EGRESS),
    ]


@pytest.mark.redis
async def test_the_second_step_may_reach_another_instance(
    make_gateway: GatewayFactory, paper: TestServer, redis_store_url: str
) -> None:
    # two instances (or workers) on one store: the first step's hold is shared
    a = await setup(make_gateway, paper, store_url=redis_store_url)
    b = await make_gateway(upstream_login_relay="true", store_url=redis_store_url)
    _, headers = await first_step(a)

    trade = await second_step(b, headers)

    assert trade.status == 200, trade.body
    sessions = await broker_sessions(paper)
    assert [(s["kind"], s["ip"]) for s in sessions] == [("view", EGRESS), ("trade", EGRESS)]
    again = await second_step(a, headers)  # finished: the hold is gone everywhere
    assert again.status == 401, again.body


async def test_a_first_step_older_than_five_minutes_no_longer_serves(
    make_gateway: GatewayFactory, paper: TestServer
) -> None:
    gw = await setup(make_gateway, paper)
    _, headers = await first_step(gw)
    gw.clock.advance(301)

    trade = await second_step(gw, headers)

    assert trade.status == 401
    assert "last five minutes" in trade.body.decode()
    # the second step never reached the broker
    assert [s["kind"] for s in await broker_sessions(paper)] == ["view"]
