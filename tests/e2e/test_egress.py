"""An account's egress address (SPEC §14): every upstream connection made for the account
(orders, reads, the quote fetched for its order) leaves from that local address, which is
what a broker checks against the static IP the account registered there."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.paper.app import create_paper_app
from gateway.stores.base import Account
from gateway.stores.sqlite import SQLiteStore

from ..conftest import GatewayFactory
from ..harness import Harness, Login

OPT = "NSE_FO|53115"  # no pushed price: its LTP is fetched upstream for a MARKET order
LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


async def set_egress(gw: Harness, user_id: str, ip: str | None) -> Any:
    return await gw.admin("PUT", f"/accounts/{user_id}/egress", {"ip": ip})


async def listed(gw: Harness, user_id: str) -> dict[str, Any]:
    reply = await gw.admin("GET", "/accounts")
    [row] = [a for a in reply.data["data"] if a["user_id"] == user_id]
    return dict(row)


def sources(requests: list[dict[str, Any]], login: Login) -> list[tuple[str, str]]:
    """(path, source address) of each upstream request made for ``login``'s account."""
    return [
        (r["path"], r["source_ip"])
        for r in requests
        if r["headers"].get("x-gateway-user-id") == login.user_id
    ]


async def test_each_accounts_orders_reads_and_quotes_leave_from_its_egress(gw: Harness) -> None:
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    assert (await set_egress(gw, first.user_id, "127.0.0.2")).status == 200
    assert (await set_egress(gw, second.user_id, "127.0.0.3")).status == 200
    await gw.set_upstream_ltp({OPT: "612.00"})

    assert (await gw.place(first, **LIMIT)).status == 200
    assert (await gw.place(second, instrument_token=OPT)).status == 200  # quote, then order
    read = await gw.request("GET", "/v2/user/profile", ip="127.0.0.3", headers=second.bearer)
    assert read.status == 200

    seen = await gw.upstream_requests()
    assert sources(seen, first) == [("/v2/order/place", "127.0.0.2")]
    assert sources(seen, second) == [
        ("/v3/market-quote/ltp", "127.0.0.3"),
        ("/v2/order/place", "127.0.0.3"),
        ("/v2/user/profile", "127.0.0.3"),
    ]
    orders = await gw.upstream_orders()
    assert [o["source_ip"] for o in orders] == ["127.0.0.2", "127.0.0.3"]


async def test_clearing_sends_by_the_default_route_again(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await set_egress(gw, trader.user_id, "127.0.0.4")
    assert (await gw.place(trader, **LIMIT)).status == 200
    cleared = await set_egress(gw, trader.user_id, None)
    assert (cleared.status, cleared.data) == (200, {"user_id": trader.user_id, "egress_ip": None})
    assert (await listed(gw, trader.user_id))["egress_ip"] is None
    assert (await gw.place(trader, **LIMIT)).status == 200
    # the default route to a loopback upstream leaves from 127.0.0.1
    assert [o["source_ip"] for o in await gw.upstream_orders()] == ["127.0.0.4", "127.0.0.1"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"ip": "192.0.2.1"}, "192.0.2.1"),  # TEST-NET-1: never on this host
        ({"ip": "not-an-ip"}, "unicast IP address"),
        ({"ip": "0.0.0.0"}, "unicast IP address"),
        ({"ip": 7}, "unicast IP address"),
        ({"address": "127.0.0.2"}, '{"ip"'),
    ],
)
async def test_a_bad_or_foreign_address_is_refused_and_nothing_is_stored(
    gw: Harness, body: dict[str, Any], says: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    await set_egress(gw, trader.user_id, "127.0.0.2")
    reply = await gw.admin("PUT", f"/accounts/{trader.user_id}/egress", body)
    assert reply.status == 400
    assert says in reply.data["message"]
    assert (await listed(gw, trader.user_id))["egress_ip"] == "127.0.0.2"
    assert (await gw.place(trader, **LIMIT)).status == 200
    assert [o["source_ip"] for o in await gw.upstream_orders()] == ["127.0.0.2"]


async def test_an_unknown_account_is_404(gw: Harness) -> None:
    assert (await set_egress(gw, "NOBODY", "127.0.0.2")).status == 404


async def test_family_members_use_the_parents_unless_they_have_their_own(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    inherits = await gw.login(await gw.account(), ip="127.0.0.2")
    own = await gw.login(await gw.account(), ip="127.0.0.2")
    for member in (inherits, own):
        body = {"user_id": member.user_id}
        joined = await gw.admin("POST", f"/accounts/{parent.user_id}/family/members", body)
        assert joined.status in (200, 201), joined.body
    inherits, own = await gw.login(inherits), await gw.login(own)
    await set_egress(gw, parent.user_id, "127.0.0.5")
    await set_egress(gw, own.user_id, "127.0.0.6")

    for login in (parent, inherits, own):
        assert (await gw.place(login, **LIMIT)).status == 200
    assert [o["source_ip"] for o in await gw.upstream_orders()] == [
        "127.0.0.5",
        "127.0.0.5",
        "127.0.0.6",
    ]
    assert (await listed(gw, inherits.user_id))["egress_ip"] is None  # inherited, not copied


async def test_ipv6_loopback_works(aiohttp_server: Any, make_gateway: GatewayFactory) -> None:
    paper6: TestServer = await aiohttp_server(create_paper_app(move_interval_s=0), host="::1")
    base = f"http://[::1]:{paper6.port}"
    gw = await make_gateway(upstream_upstox=base, upstream_kotak=base, upstream_paradex=base)
    trader = await gw.trader("127.0.0.2")
    assert (await set_egress(gw, trader.user_id, "::1")).status == 200
    assert (await gw.place(trader, **LIMIT)).status == 200
    async with aiohttp.ClientSession() as plain, plain.get(base + "/paper/orders") as resp:
        orders = (await resp.json())["orders"]
    assert [o["source_ip"] for o in orders] == ["::1"]


async def test_the_cli_sets_and_clears_it(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    code, out, err = await gw.cli("egress", "set", trader.user_id, "127.0.0.7")
    assert code == 0, err
    assert "127.0.0.7" in out
    assert (await listed(gw, trader.user_id))["egress_ip"] == "127.0.0.7"
    code, _, err = await gw.cli("egress", "set", trader.user_id, "192.0.2.1")
    assert code != 0
    assert "192.0.2.1" in err
    code, _, err = await gw.cli("egress", "clear", trader.user_id)
    assert code == 0, err
    assert (await listed(gw, trader.user_id))["egress_ip"] is None


async def test_startup_names_an_address_the_host_lacks(
    make_gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "lost.db"
    store = SQLiteStore(str(path))
    await store.start()
    when = datetime(2026, 4, 6, tzinfo=UTC)
    await store.create_account(Account("LOST1", "Lost", when, egress_ip="192.0.2.1"))
    await store.create_account(Account("FINE1", "Fine", when, egress_ip="127.0.0.2"))
    await store.close()

    with caplog.at_level(logging.ERROR, logger="gateway.egress"):
        gw = await make_gateway(store_url=f"sqlite:///{path}")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.egress"]
    assert len(lines) == 1
    assert "LOST1" in lines[0] and "192.0.2.1" in lines[0]
    assert (await gw.request("GET", "/healthz")).status == 200
