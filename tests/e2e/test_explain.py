"""Explain (SPEC §12) against a real gateway and paper broker: the same decision as the
pipeline, step by step, with nothing forwarded and nothing consumed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.instruments import sample_master

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness, Login, form, kotak_market, market_order
from .conftest import KOTAK_RELIANCE, Kotak, kotak_headers
from .conftest import PLACE as KOTAK_PLACE

PLACE = "/v2/order/place"


async def explain(
    gw: Harness,
    login: Login,
    *,
    ip: str | None = None,
    headers: dict[str, str] | None = None,
    **order: Any,
) -> dict[str, Any]:
    reply = await gw.admin(
        "POST",
        "/explain",
        {
            "client_ip": ip or login.ip,
            "method": "POST",
            "path": PLACE,
            "headers": {**login.bearer, "Content-Type": "application/json", **(headers or {})},
            "body": json.dumps(market_order(**order)),
        },
    )
    assert reply.status == 200, reply.body
    return dict(reply.data)


def step(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in answer["steps"] if s["step"] == name)


async def test_a_market_order_explained_then_placed_gets_the_same_limit_price(
    gw: Harness,
) -> None:
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250.40"})
    before = len(await gw.upstream_requests())

    answer = await explain(gw, trader)

    assert answer["decision"] == "admitted"
    assert answer["status"] == 200
    assert answer["reason"] is None
    assert [s["step"] for s in answer["steps"]] == [
        "route",
        "credential",
        "registered_ip",
        "session_ip",
        "slot",
        "decode",
        "ownership",
        "conversion",
        "idempotency",
        "rate_window",
    ]
    assert all(s["ok"] for s in answer["steps"])
    [order] = answer["orders"]
    assert order["order_type"] == "LIMIT"
    assert order["ltp"] == "1250.40"
    # EQ above ₹500: a 0.5% band, BUY at LTP + band snapped to the tick toward the LTP
    assert Decimal(order["band"]) == Decimal("6.2520")
    instrument = sample_master().get(RELIANCE)
    assert instrument is not None
    tick = instrument.tick_size
    assert Decimal(order["limit_price"]) == (Decimal("1256.652") // tick) * tick
    assert json.loads(answer["upstream_body"])["order_type"] == "LIMIT"
    assert len(await gw.upstream_requests()) == before  # nothing was forwarded

    placed = await gw.place(trader)
    assert placed.status == 200, placed.body
    assert placed.headers["X-Gateway-Limit-Price"] == order["limit_price"]
    [sent] = await gw.upstream_orders()
    assert sent["body"] == json.loads(answer["upstream_body"])  # what explain said would go


@pytest.fixture(params=["sqlite", "redis"])
async def any_store(
    request: pytest.FixtureRequest, redis_store_url: str, make_gateway: GatewayFactory
) -> Harness:
    """A gateway on each store: the window and the keys are read by each backend's own code.
    (``redis_store_url`` comes first, so its prefix is deleted after the gateway closes.)"""
    if request.param == "sqlite":
        return await make_gateway()
    return await make_gateway(store_url=redis_store_url)


async def test_eleven_explains_then_ten_orders_in_one_second_all_pass(any_store: Harness) -> None:
    gw = any_store
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250"})
    for _ in range(11):
        answer = await explain(gw, trader)
        assert answer["decision"] == "admitted"
        assert step(answer, "rate_window")["detail"].startswith("0 of 10 orders")

    for _ in range(10):  # the fake clock stands still: all ten are in one second
        assert (await gw.place(trader)).status == 200

    # the window is real: now full, the explain says so and the next order is refused
    full = await explain(gw, trader)
    assert (full["decision"], full["status"], full["reason"]) == ("refused", 429, "RATE_LIMITED")
    assert not step(full, "rate_window")["ok"]
    assert step(full, "rate_window")["detail"].startswith("10 of 10 orders")
    assert (await gw.place(trader)).status == 429


async def test_an_explain_with_an_idempotency_key_leaves_the_key_unclaimed(
    any_store: Harness,
) -> None:
    gw = any_store
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250"})
    key = {"Idempotency-Key": "order-42"}

    answer = await explain(gw, trader, headers=key)
    assert answer["decision"] == "admitted"
    assert "'order-42' is free" in step(answer, "idempotency")["detail"]

    first = await gw.request(
        "POST", PLACE, ip=trader.ip, json=market_order(), headers={**trader.bearer, **key}
    )
    assert first.status == 200, first.body
    assert "Idempotent-Replayed" not in first.headers  # the key was claimed by the order
    assert len(await gw.upstream_orders()) == 1

    repeat = await explain(gw, trader, headers=key)
    assert repeat["decision"] == "admitted"
    assert "replayed" in step(repeat, "idempotency")["detail"]
    assert repeat["upstream_body"] is None
    assert [s["step"] for s in repeat["steps"]][-1] == "idempotency"  # no rate slot needed

    other = await explain(gw, trader, headers=key, quantity=2)
    assert (other["status"], other["reason"]) == (422, "IDEMPOTENCY_MISMATCH")


async def test_an_order_from_an_unregistered_ip_is_explained_as_refused(gw: Harness) -> None:
    trader = await gw.trader()
    answer = await explain(gw, trader, ip="127.0.0.9")

    assert answer["decision"] == "refused"
    assert answer["status"] == 403
    assert answer["reason"] == "IP_NOT_REGISTERED"
    assert answer["failed_step"] == "registered_ip"
    assert [(s["step"], s["ok"]) for s in answer["steps"]] == [
        ("route", True),
        ("credential", True),
        ("registered_ip", False),
    ]
    assert "127.0.0.9" in step(answer, "registered_ip")["detail"]
    assert answer["orders"] == []
    assert answer["upstream_body"] is None


async def test_explains_name_the_step_that_fails(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")
    session_ip = await explain(gw, trader, ip="127.0.0.3")  # registered, not the session's IP
    assert (session_ip["failed_step"], session_ip["reason"]) == (
        "session_ip",
        "SESSION_IP_MISMATCH",
    )

    stale = await gw.login(trader)  # a newer session from the same IP takes the slot
    slot = await explain(gw, trader)
    assert (slot["failed_step"], slot["reason"]) == ("slot", "SLOT_TAKEN")

    bad = await explain(gw, stale, order_type="MARKETT")
    assert (bad["failed_step"], bad["status"]) == ("decode", 400)

    unknown = await explain(gw, stale, instrument_token="NSE_EQ|NOSUCH0000")
    assert (unknown["failed_step"], unknown["reason"]) == ("conversion", "LTP_UNAVAILABLE")
    assert step(unknown, "ownership")["ok"]

    token = await explain(gw, Login(trader.user_id, "", "", "not-a-token", "", trader.ip))
    assert (token["failed_step"], token["status"]) == ("credential", 401)


async def test_a_refused_audit_record_is_explained_with_its_failing_step(gw: Harness) -> None:
    trader = await gw.trader()
    refused = await gw.place(trader, ip="127.0.0.9")
    assert refused.status == 403

    records = (await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=1")).data["data"]
    [record] = records
    assert record["decision"] == "refused"
    assert record["target"] == PLACE
    assert trader.token not in json.dumps(record)

    for reply in (
        await gw.admin("POST", "/explain", {"audit_id": record["audit_id"]}),
        await gw.admin("GET", f"/audit/{record['audit_id']}/explain"),
    ):
        assert reply.status == 200, reply.body
        answer = reply.data
        assert answer["audit_id"] == record["audit_id"]
        assert answer["recorded"]["reason"] == "ip_not_registered"
        assert (answer["decision"], answer["status"]) == ("refused", 403)
        assert answer["failed_step"] == "registered_ip"
        assert not step(answer, "registered_ip")["ok"]

    missing = await gw.admin("POST", "/explain", {"audit_id": "nope"})
    assert (missing.status, missing.data["error"]) == (404, "NOT_FOUND")


async def test_an_admitted_audit_record_explains_as_admitted_now(gw: Harness) -> None:
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250"})
    assert (await gw.place(trader)).status == 200
    [record] = (await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=1")).data["data"]
    answer = (await gw.admin("POST", "/explain", {"audit_id": record["audit_id"]})).data
    assert answer["decision"] == "admitted"
    assert answer["orders"][0]["limit_price"] == record["conversions"][0]["limit_price"]


async def test_the_explain_is_audited_without_the_probes_headers(gw: Harness) -> None:
    trader = await gw.trader()
    await explain(gw, trader, ip="127.0.0.9")
    [record] = (await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=1")).data["data"]
    assert record["decision"] == "explain"
    assert record["explained"] == {
        "client_ip": "127.0.0.9",
        "method": "POST",
        "target": PLACE,
        "audit_id": None,
    }
    assert (record["result"], record["reason"], record["status"]) == (
        "refused",
        "IP_NOT_REGISTERED",
        403,
    )
    assert record["audit_id"]
    assert trader.token not in json.dumps(record)


async def test_explain_refuses_a_malformed_probe(gw: Harness) -> None:
    bodies: list[Any] = [
        [],
        {"client_ip": "127.0.0.2", "method": "POST", "path": "v2/order/place"},
        {"client_ip": "not an ip", "method": "POST", "path": PLACE},
        {"client_ip": "127.0.0.2", "method": "POST", "path": PLACE, "headers": {"A": 1}},
        {"client_ip": "127.0.0.2", "method": "POST", "path": PLACE, "body": {"a": 1}},
        {"audit_id": 5},
    ]
    for body in bodies:
        reply = await gw.admin("POST", "/explain", body)
        assert reply.status in (400, 422), (body, reply.body)
    unauthenticated = await gw.request("POST", "/admin/v1/explain", ip="127.0.0.1", json={})
    assert unauthenticated.status == 401


async def test_reads_and_unknown_routes_are_explained_too(gw: Harness) -> None:
    trader = await gw.trader()
    probe = {"client_ip": trader.ip, "headers": trader.bearer, "body": ""}
    read = await gw.admin(
        "POST", "/explain", {**probe, "method": "GET", "path": "/v2/user/profile"}
    )
    assert read.data["decision"] == "admitted"
    assert [s["step"] for s in read.data["steps"]] == ["route", "credential"]

    wrong = await gw.admin("POST", "/explain", {**probe, "method": "GET", "path": PLACE})
    assert (wrong.data["status"], wrong.data["failed_step"]) == (405, "route")

    nowhere = await gw.admin("POST", "/explain", {**probe, "method": "GET", "path": "/nowhere"})
    assert (nowhere.data["status"], nowhere.data["failed_step"]) == (404, "route")


async def test_the_cli_explains_a_request_and_an_audit_record(gw: Harness) -> None:
    trader = await gw.trader()
    code, out, err = await gw.cli(
        "explain",
        "--from-ip",
        "127.0.0.9",
        "--header",
        f"Authorization: Bearer {trader.token}",
        "POST",
        PLACE,
        json.dumps(market_order()),
    )
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["reason"], answer["failed_step"]) == ("IP_NOT_REGISTERED", "registered_ip")

    await gw.place(trader, ip="127.0.0.9")
    [record] = (await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=1")).data["data"]
    code, out, err = await gw.cli("explain", "--audit-id", record["audit_id"])
    assert code == 0, err
    assert json.loads(out)["failed_step"] == "registered_ip"

    code, _, err = await gw.cli("explain", "POST")  # neither a request nor --audit-id
    assert code == 1
    assert "explain" in err


async def test_a_kotak_market_order_is_explained_then_placed_at_the_same_price(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader()
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    reply = await gw.admin(
        "POST",
        "/explain",
        {
            "client_ip": trader.ip,
            "method": "POST",
            "path": KOTAK_PLACE,
            "headers": {
                **kotak_headers(trader),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            "body": form(kotak_market()).decode(),
        },
    )
    answer = reply.data
    assert answer["decision"] == "admitted", answer
    assert answer["orders"] == [
        {"order_type": "LIMIT", "limit_price": "1408.5", "ltp": "1401.5", "band": "7.0075"}
    ]
    placed = await kotak.place(trader)
    assert placed.headers["X-Gateway-Limit-Price"] == "1408.5"

    # a Sid naming another session is refused at the credential step, as the order would be
    stale = Login(trader.user_id, "", "", trader.token, "other-session", trader.ip)
    reply = await gw.admin(
        "POST",
        "/explain",
        {
            "client_ip": trader.ip,
            "method": "POST",
            "path": KOTAK_PLACE,
            "headers": kotak_headers(stale),
            "body": form(kotak_market()).decode(),
        },
    )
    assert (reply.data["failed_step"], reply.data["status"]) == ("credential", 401)
