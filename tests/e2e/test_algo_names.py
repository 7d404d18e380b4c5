"""Per-account algo id and name (SPEC §8): each account's orders carry its own, else the
configured ones; a client's own X-Algo-* headers never pass; bad values change nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway import cli

from ..conftest import GatewayFactory
from ..harness import ADMIN_TOKEN, Harness, Login, form, kotak_market, market_order
from .conftest import PLACE, Kotak

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}
SPOOFED = {"X-Algo-Id": "66666", "X-Algo-Name": "Spoofed", "X-Algo-Category": "spoof"}


@pytest.fixture
async def gw(make_gateway: GatewayFactory) -> Harness:
    return await make_gateway(rules_algo_id="12345", rules_algo_name="House Algo")


async def set_algo(gw: Harness, login: Login, **body: Any) -> Any:
    return await gw.admin("PUT", f"/accounts/{login.user_id}", body)


async def place(gw: Harness, login: Login) -> None:
    reply = await gw.request(
        "POST",
        "/v2/order/place",
        ip=login.ip,
        json=market_order(**LIMIT),
        headers={**login.bearer, **SPOOFED},
    )
    assert reply.status == 200, reply.body


async def algo_headers_upstream(gw: Harness) -> list[tuple[str | None, str | None]]:
    return [
        (o["headers"].get("x-algo-id"), o["headers"].get("x-algo-name"))
        for o in await gw.upstream_orders()
    ]


async def test_each_account_sends_its_own_algo_name(gw: Harness) -> None:
    alpha = await gw.trader("127.0.0.2")
    beta = await gw.trader("127.0.0.3")
    house = await gw.trader("127.0.0.4")
    assert (await set_algo(gw, alpha, algo_name="Alpha Momentum")).status == 200
    assert (await set_algo(gw, beta, algo_id="ALGO-B", algo_name="Beta Arb")).status == 200

    for login in (alpha, beta, house):
        await place(gw, login)

    assert await algo_headers_upstream(gw) == [
        ("12345", "Alpha Momentum"),  # its own name, the configured id
        ("ALGO-B", "Beta Arb"),
        ("12345", "House Algo"),  # nothing of its own: the configured ones
    ]
    for request in await gw.upstream_requests():
        sent = json.dumps(request)
        assert "Spoofed" not in sent and "66666" not in sent
        assert "x-algo-category" not in request["headers"]


async def test_kotak_orders_carry_the_accounts_algo_id_only(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    assert (await set_algo(gw, trader, algo_id="ALGO-K", algo_name="Kotak Algo")).status == 200
    headers = {
        "Auth": trader.token,
        "Sid": trader.session_id,
        "Content-Type": "application/x-www-form-urlencoded",
        **SPOOFED,
    }

    reply = await gw.request(
        "POST", PLACE, data=form(kotak_market(pt="L", pr="1400")), headers=headers
    )

    assert reply.status == 200, reply.body
    [order] = await kotak.upstream_kotak_orders()
    assert order["headers"]["x-algo-id"] == "ALGO-K"
    assert "x-algo-name" not in order["headers"]  # an upstox header (SPEC §8)
    assert "x-algo-category" not in order["headers"]


async def test_the_put_sets_what_it_names_and_null_clears(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    both = await set_algo(gw, trader, algo_id="A-1", algo_name="First")
    name_only = await set_algo(gw, trader, algo_name="Second")
    listed = await gw.admin("GET", "/accounts")
    await place(gw, trader)
    cleared = await set_algo(gw, trader, algo_id=None)
    await place(gw, trader)

    assert both.status == 200 and both.data["algo_id"] == "A-1"
    assert (name_only.data["algo_id"], name_only.data["algo_name"]) == ("A-1", "Second")
    [shown] = [a for a in listed.data["data"] if a["user_id"] == trader.user_id]
    assert (shown["algo_id"], shown["algo_name"]) == ("A-1", "Second")
    assert (cleared.data["algo_id"], cleared.data["algo_name"]) == (None, "Second")
    assert await algo_headers_upstream(gw) == [("A-1", "Second"), ("12345", "Second")]
    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=50")
    records = [r for r in audit.data["data"] if r["decision"] == "admin_algo_set"]
    assert [(r["original"], r["rewritten"]) for r in reversed(records)] == [
        ({"algo_id": None, "algo_name": None}, {"algo_id": "A-1", "algo_name": "First"}),
        ({"algo_id": "A-1", "algo_name": "First"}, {"algo_id": "A-1", "algo_name": "Second"}),
        ({"algo_id": "A-1", "algo_name": "Second"}, {"algo_id": None, "algo_name": "Second"}),
    ]


async def test_an_unknown_account_is_404(gw: Harness) -> None:
    reply = await gw.admin("PUT", "/accounts/NOBODY", {"algo_name": "X"})

    assert reply.status == 404
    assert reply.data["error"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"algo_name": "Momentum\r\nX-Algo-Id: 1"}, "algo_name"),
        ({"algo_name": "Momentum\x00"}, "algo_name"),
        ({"algo_name": "Mo\tmentum"}, "algo_name"),
        ({"algo_id": "A\x7f"}, "algo_id"),
        ({"algo_id": "OK", "algo_name": "\x1b[31mred"}, "algo_name"),
        ({"algo_name": "x" * 65}, "algo_name"),
        ({"algo_id": 12345}, "algo_id"),
        ({"algo": "X"}, "algo"),
    ],
)
async def test_bad_values_are_400_naming_the_field_and_change_nothing(
    gw: Harness, body: dict[str, Any], field: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    assert (await set_algo(gw, trader, algo_name="Before")).status == 200
    for _ in range(9):
        await place(gw, trader)
    before = await gw.upstream_requests()

    refused = await set_algo(gw, trader, **body)

    assert refused.status == 400
    assert refused.data["error"] == "BAD_REQUEST"
    assert field in refused.data["message"]
    assert await gw.upstream_requests() == before
    await place(gw, trader)  # the tenth order in the second still fits
    assert (await gw.place(trader, **LIMIT)).status == 429
    listed = await gw.admin("GET", "/accounts")
    [shown] = [a for a in listed.data["data"] if a["user_id"] == trader.user_id]
    assert (shown["algo_id"], shown["algo_name"]) == (None, "Before")
    assert await algo_headers_upstream(gw) == [("12345", "Before")] * 10
    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=50")
    assert len([r for r in audit.data["data"] if r["decision"] == "admin_algo_set"]) == 1


async def test_an_account_is_created_with_its_algo(gw: Harness) -> None:
    created = await gw.admin(
        "POST", "/accounts", {"user_id": "ALG1", "name": "A", "algo_name": "From Start"}
    )
    refused = await gw.admin(
        "POST", "/accounts", {"user_id": "ALG2", "name": "B", "algo_id": "bad\nid"}
    )

    assert created.status == 201, created.body
    assert (created.data["algo_id"], created.data["algo_name"]) == (None, "From Start")
    assert refused.status == 400 and "algo_id" in refused.data["message"]
    listed = await gw.admin("GET", "/accounts")
    assert "ALG2" not in [a["user_id"] for a in listed.data["data"]]


async def test_the_cli_sets_and_clears(
    gw: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trader = await gw.trader("127.0.0.2")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)

    def run(*args: str) -> int:
        return cli.main(["accounts", "set", trader.user_id, *args, "--url", gw.url])

    set_both = await asyncio.to_thread(run, "--algo-id", "CLI-1", "--algo-name", "Cli Algo")
    printed = json.loads(capsys.readouterr().out)
    await place(gw, trader)
    clear_name = await asyncio.to_thread(run, "--algo-name", "")
    cleared = json.loads(capsys.readouterr().out)
    nothing = await asyncio.to_thread(run)
    said = capsys.readouterr().err

    assert set_both == 0 and clear_name == 0
    assert (printed["algo_id"], printed["algo_name"]) == ("CLI-1", "Cli Algo")
    assert (cleared["algo_id"], cleared["algo_name"]) == ("CLI-1", None)
    assert await algo_headers_upstream(gw) == [("CLI-1", "Cli Algo")]
    assert nothing == 2 and "--algo-id, --algo-name or both" in said


@pytest.mark.redis
async def test_a_change_on_one_instance_is_in_force_on_another(
    redis_store_url: str, make_gateway: GatewayFactory
) -> None:
    a = await make_gateway(store_url=redis_store_url)
    b = await make_gateway(store_url=redis_store_url)
    trader = await a.trader("127.0.0.2")
    await place(b, trader)  # B holds the account in its snapshot cache now

    assert (await set_algo(a, trader, algo_id="ALGO-R", algo_name="Redis Algo")).status == 200
    await place(b, trader)

    assert await algo_headers_upstream(b) == [("99999", None), ("ALGO-R", "Redis Algo")]
