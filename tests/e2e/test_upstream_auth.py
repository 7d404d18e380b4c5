"""A stored upstream credential (SPEC §10): for a real broker behind a static-IP host, the
account's own broker headers replace the gateway's identity headers on every request made on
its behalf; the admin API and the CLI set and clear it, and never show its values."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.forwarding import public_session_id

from ..conftest import GatewayFactory
from ..harness import Harness, Login
from .conftest import Kotak
from .test_operations import cli

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}
OPT = "NSE_FO|53115"  # an option with no pushed price: its LTP is fetched upstream
BROKER = "Bearer broker-access-token-AB1234"
IDENTITY = ("x-gateway-user-id", "x-gateway-session-id")


async def set_auth(gw: Harness, user_id: str, dialect: str, headers: dict[str, str]) -> None:
    reply = await gw.admin(
        "PUT", f"/accounts/{user_id}/upstream-auth/{dialect}", {"headers": headers}
    )
    assert reply.status == 204, reply.body


async def received(gw: Harness) -> list[dict[str, Any]]:
    """Each request the paper broker received, with its lowercased headers."""
    return await gw.upstream_requests()


def assert_broker_auth(headers: dict[str, str], login: Login) -> None:
    assert headers["authorization"] == BROKER
    for name in IDENTITY:
        assert name not in headers
    assert login.token not in str(headers)


async def test_orders_reads_and_quotes_carry_the_stored_credential_instead_of_identity(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    await set_auth(gw, trader.user_id, "upstox", {"Authorization": BROKER})
    await gw.set_upstream_ltp({OPT: "612.00"})

    limit = await gw.place(trader, **LIMIT)
    market = await gw.place(trader, instrument_token=OPT)  # fetches the LTP first
    read = await gw.request(
        "GET", "/v2/user/profile", headers={**trader.bearer, "Accept": "application/json"}
    )

    assert (limit.status, market.status, read.status) == (200, 200, 200), market.body
    seen = await received(gw)
    assert [r["path"] for r in seen] == [
        "/v2/order/place",
        "/v3/market-quote/ltp",
        "/v2/order/place",
        "/v2/user/profile",
    ]
    for request in seen:
        assert_broker_auth(request["headers"], trader)
    orders = [r for r in seen if r["path"] == "/v2/order/place"]
    assert all(r["headers"]["x-algo-id"] for r in orders)  # the algo id still goes
    assert seen[-1]["headers"]["accept"] == "application/json"  # so do the dialect's headers
    assert trader.token not in str(seen)


async def test_accounts_without_a_stored_credential_still_send_identity(gw: Harness) -> None:
    broker_side = await gw.trader("127.0.0.2")
    plain = await gw.trader("127.0.0.3")
    await set_auth(gw, broker_side.user_id, "upstox", {"Authorization": BROKER})
    await gw.set_upstream_ltp({OPT: "612.00"})

    assert (await gw.place(plain, instrument_token=OPT)).status == 200
    assert (
        await gw.request("GET", "/v2/user/profile", ip="127.0.0.3", headers=plain.bearer)
    ).status == 200

    seen = await received(gw)
    assert [r["path"] for r in seen] == [
        "/v3/market-quote/ltp",
        "/v2/order/place",
        "/v2/user/profile",
    ]
    quote, order, read = (r["headers"] for r in seen)
    assert quote["x-gateway-user-id"] == plain.user_id and "authorization" not in quote
    for headers in (order, read):
        assert headers["x-gateway-user-id"] == plain.user_id
        # the session's public id: its id is a kotak Sid, never sent upstream (SPEC §10)
        assert headers["x-gateway-session-id"] == public_session_id(plain.session_id)
        assert "authorization" not in headers


async def test_a_credential_for_one_dialect_leaves_the_others_on_identity(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2")
    await set_auth(gw, trader.user_id, "upstox", {"Authorization": BROKER})

    assert (await kotak.orders(trader)).status == 200

    [request] = await received(gw)
    assert request["headers"]["x-gateway-user-id"] == trader.user_id
    assert "authorization" not in request["headers"]


async def test_a_kotak_credential_replaces_identity_and_the_clients_auth_and_sid(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2")
    stored = {"Authorization": "broker-jwt", "Sid": "broker-sid", "neo-fin-key": "neotradeapi"}
    await set_auth(gw, trader.user_id, "kotak", stored)

    assert (await kotak.orders(trader)).status == 200
    assert (await kotak.place(trader, pt="L", pr="1400")).status == 200

    for request in await received(gw):
        headers = request["headers"]
        assert {k: headers[k.lower()] for k in stored} == stored
        assert "auth" not in headers
        for name in IDENTITY:
            assert name not in headers
        assert trader.token not in str(headers) and trader.session_id not in str(headers)


async def test_clearing_the_credential_brings_identity_back_on_the_next_request(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    path = f"/accounts/{trader.user_id}/upstream-auth/upstox"
    await set_auth(gw, trader.user_id, "upstox", {"Authorization": BROKER})
    assert (await gw.place(trader, **LIMIT)).status == 200

    assert (await gw.admin("DELETE", path)).status == 204
    assert (await gw.admin("DELETE", path)).status == 204  # clearing again is fine
    assert (await gw.place(trader, **LIMIT)).status == 200

    first, second = (r["headers"] for r in await gw.upstream_orders())
    assert first["authorization"] == BROKER and "x-gateway-user-id" not in first
    assert second["x-gateway-user-id"] == trader.user_id and "authorization" not in second

    await set_auth(gw, trader.user_id, "upstox", {"Authorization": "Bearer replaced"})
    assert (await gw.place(trader, **LIMIT)).status == 200
    assert (await gw.upstream_orders())[-1]["headers"]["authorization"] == "Bearer replaced"


async def test_the_account_view_and_the_audit_log_name_dialects_never_values(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    await set_auth(gw, trader.user_id, "upstox", {"Authorization": BROKER})
    await set_auth(gw, trader.user_id, "kotak", {"Sid": "kotak-secret"})
    assert (
        await gw.admin("DELETE", f"/accounts/{trader.user_id}/upstream-auth/kotak")
    ).status == 204

    listed = await gw.admin("GET", "/accounts")
    [view] = [a for a in listed.data["data"] if a["user_id"] == trader.user_id]
    assert view["upstream_auth"] == ["upstox"]
    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=10")
    cleared, kotak_set, upstox_set = audit.data["data"][:3]
    assert upstox_set["decision"] == "admin_upstream_auth_set"
    assert (upstox_set["dialect"], upstox_set["headers"]) == ("upstox", ["Authorization"])
    assert (kotak_set["dialect"], kotak_set["headers"]) == ("kotak", ["Sid"])
    assert (cleared["decision"], cleared["dialect"]) == ("admin_upstream_auth_clear", "kotak")
    for body in (listed.body, audit.body):
        assert b"broker-access-token" not in body and b"kotak-secret" not in body
    others = await gw.admin("GET", "/accounts")
    assert all(
        a["upstream_auth"] == [] for a in others.data["data"] if a["user_id"] != trader.user_id
    )


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        ("zerodha", {"headers": {"Authorization": BROKER}}),
        ("UPSTOX", {"headers": {"Authorization": BROKER}}),
        ("upstox", {"Authorization": BROKER}),
        ("upstox", {"headers": {}}),
        ("upstox", {"headers": {f"X-H{i}": "v" for i in range(9)}}),
        ("upstox", {"headers": {"Bad Name": "v"}}),
        ("upstox", {"headers": {"Bad:Name": "v"}}),
        ("upstox", {"headers": {"Authorization": "Bearer x\r\nX-Injected: 1"}}),
        ("upstox", {"headers": {"Authorization": "Bearer x\n"}}),
        ("upstox", {"headers": {"Authorization": "Bearer \u0000x"}}),
        ("upstox", {"headers": {"Authorization": "x" * 4097}}),
        ("upstox", {"headers": {"Authorization": 7}}),
        ("upstox", {"headers": {"Host": "broker.example"}}),
        ("upstox", {"headers": {"Content-Length": "0"}}),
        ("upstox", {"headers": {"Transfer-Encoding": "chunked"}}),
        ("upstox", {"headers": {"Connection": "close"}}),
        ("upstox", {"headers": {"X-Gateway-User-Id": "someone-else"}}),
        ("upstox", {"headers": {"X-Algo-Id": "ALGO"}}),
        ("upstox", {"headers": {"Authorization": "a", "authorization": "b"}}),
    ],
)
async def test_bad_credentials_are_refused_and_change_nothing(
    gw: Harness, dialect: str, body: Any
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.admin("PUT", f"/accounts/{trader.user_id}/upstream-auth/{dialect}", body)

    assert reply.status == 400, reply.body
    assert reply.data["error"] == "BAD_REQUEST"
    [view] = (await gw.admin("GET", "/accounts")).data["data"]
    assert view["upstream_auth"] == []
    assert (await gw.place(trader, **LIMIT)).status == 200
    [order] = await gw.upstream_orders()
    assert order["headers"]["x-gateway-user-id"] == trader.user_id


async def test_an_unknown_account_is_404_and_a_bad_dialect_400(gw: Harness) -> None:
    headers = {"headers": {"Authorization": BROKER}}
    assert (await gw.admin("PUT", "/accounts/NOPE/upstream-auth/upstox", headers)).status == 404
    assert (await gw.admin("DELETE", "/accounts/NOPE/upstream-auth/upstox")).status == 404
    await gw.account("AB1234")
    assert (await gw.admin("DELETE", "/accounts/AB1234/upstream-auth/nse")).status == 400
    unauthenticated = await gw.request(
        "PUT", "/admin/v1/accounts/AB1234/upstream-auth/upstox", json=headers
    )
    assert unauthenticated.status == 401


async def test_the_cli_sets_and_clears_a_credential(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    shown = await cli(
        gw,
        "upstream-auth",
        "set",
        trader.user_id,
        "upstox",
        f"Authorization: {BROKER}",
        "X-Api-Key: k-1",
    )
    assert shown == {
        "user_id": trader.user_id,
        "dialect": "upstox",
        "upstream_auth": ["Authorization", "X-Api-Key"],
    }
    assert (await gw.place(trader, **LIMIT)).status == 200

    cleared = await cli(gw, "upstream-auth", "clear", trader.user_id, "upstox")
    assert cleared["upstream_auth"] is None
    assert (await gw.place(trader, **LIMIT)).status == 200

    first, second = (r["headers"] for r in await gw.upstream_orders())
    assert (first["authorization"], first["x-api-key"]) == (BROKER, "k-1")
    assert "x-gateway-user-id" not in first
    assert second["x-gateway-user-id"] == trader.user_id


async def test_the_cli_reads_headers_from_stdin_and_never_prints_values(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    code, out, err = await gw.cli(
        "upstream-auth",
        "set",
        trader.user_id,
        "upstox",
        stdin=f"Authorization: {BROKER}\n\n".encode(),
    )
    assert code == 0, err
    assert "broker-access-token" not in out

    assert (await gw.place(trader, **LIMIT)).status == 200
    [order] = await gw.upstream_orders()
    assert order["headers"]["authorization"] == BROKER


@pytest.mark.parametrize(
    "lines",
    [
        ["Bearer broker-access-token-AB1234"],  # no name: refused before anything is sent
        ["Authorization: a", "Authorization: b"],
        ["X-Gateway-User-Id: AB1"],
    ],
)
async def test_the_cli_refuses_bad_header_lines_without_echoing_them(
    gw: Harness, lines: list[str]
) -> None:
    trader = await gw.trader("127.0.0.2")
    code, _, err = await gw.cli("upstream-auth", "set", trader.user_id, "upstox", *lines)
    assert code != 0
    assert "broker-access-token" not in err
    [view] = (await gw.admin("GET", "/accounts")).data["data"]
    assert view["upstream_auth"] == []


async def test_the_cli_reports_the_gateways_refusal(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    code, _, err = await gw.cli(
        "upstream-auth", "set", trader.user_id, "nse", f"Authorization: {BROKER}"
    )
    assert code != 0 and "400" in err and "unknown dialect" in err


# two instances on one Redis store ----------------------------------------------------------


@pytest.fixture
async def pair(redis_store_url: str, make_gateway: GatewayFactory) -> tuple[Harness, Harness]:
    a = await make_gateway(store_url=redis_store_url)
    b = await make_gateway(store_url=redis_store_url)
    return a, b


@pytest.mark.redis
async def test_a_change_on_one_instance_is_in_force_on_the_other_at_once(
    pair: tuple[Harness, Harness],
) -> None:
    a, b = pair
    trader = await a.trader("127.0.0.2")
    read = {**trader.bearer}
    # B caches the snapshot (no stored credential) for orders and reads.
    assert (await b.place(trader, **LIMIT)).status == 200
    assert (await b.request("GET", "/v2/user/profile", headers=read)).status == 200

    await a.set_upstream_ltp({OPT: "612.00"})
    await set_auth(a, trader.user_id, "upstox", {"Authorization": BROKER})
    # B's first request after the change fetches a quote before its order is admitted: that
    # quote already carries the new credential.
    assert (await b.place(trader, instrument_token=OPT)).status == 200
    assert (await b.place(trader, **LIMIT)).status == 200
    assert (await b.request("GET", "/v2/user/profile", headers=read)).status == 200

    assert (
        await b.admin("DELETE", f"/accounts/{trader.user_id}/upstream-auth/upstox")
    ).status == 204
    assert (await a.place(trader, **LIMIT)).status == 200

    seen = await a.upstream_requests()
    assert [r["path"] for r in seen] == [
        "/v2/order/place",
        "/v2/user/profile",
        "/v3/market-quote/ltp",
        "/v2/order/place",
        "/v2/order/place",
        "/v2/user/profile",
        "/v2/order/place",
    ]
    before, after, last = seen[:2], seen[2:6], seen[6]
    for request in before:
        assert request["headers"]["x-gateway-user-id"] == trader.user_id
    for request in after:
        assert_broker_auth(request["headers"], trader)
    assert last["headers"]["x-gateway-user-id"] == trader.user_id
    assert "authorization" not in last["headers"]
