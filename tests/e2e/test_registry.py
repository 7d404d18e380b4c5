"""SPEC §4: ``GET``/``PUT /v2/user/ip`` shapes, Upstox codes, cooldown and the race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from ..conftest import GatewayFactory
from ..harness import Harness, Login


async def put(gw: Harness, login: Login, body: Any) -> Any:
    return await gw.request("PUT", "/v2/user/ip", ip=login.ip, json=body, headers=login.bearer)


async def test_get_before_registration_answers_nulls(gw: Harness) -> None:
    login = await gw.login(await gw.account())
    reply = await gw.request("GET", "/v2/user/ip", headers=login.bearer)
    assert reply.status == 200
    assert reply.data == {
        "status": "success",
        "data": {
            "user_id": login.user_id,
            "primary_ip": None,
            "secondary_ip": None,
            "primary_ip_updated_at": None,
            "secondary_ip_updated_at": None,
        },
    }


async def test_put_answers_the_shape_with_server_time_and_invalidates(gw: Harness) -> None:
    gw.clock.set(datetime(2026, 11, 16, 4, 0, 5, tzinfo=UTC))  # 09:30:05 IST
    login = await gw.login(await gw.account())

    reply = await put(gw, login, {"primary_ip": "127.0.0.2", "secondary_ip": "::1"})

    assert reply.status == 200
    assert reply.data["data"] == {
        "user_id": login.user_id,
        "primary_ip": "127.0.0.2",
        "secondary_ip": "::1",
        "primary_ip_updated_at": "2026-11-16 09:30:05",
        "secondary_ip_updated_at": "2026-11-16 09:30:05",
        "access_tokens_invalidated": True,
    }
    assert (await gw.request("GET", "/v2/user/ip", headers=login.bearer)).status == 401


async def test_an_identical_put_changes_nothing_and_keeps_tokens(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")
    reply = await put(gw, trader, {"primary_ip": "127.0.0.2", "secondary_ip": "127.0.0.3"})
    assert reply.status == 200
    assert reply.data["data"]["access_tokens_invalidated"] is False
    assert (await gw.request("GET", "/v2/user/ip", headers=trader.bearer)).status == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "UDAPI1182"),
        ({"primary_ip": None}, "UDAPI1182"),
        ({"primary_ip": ""}, "UDAPI1182"),
        ({"secondary_ip": "127.0.0.2"}, "UDAPI1182"),
        ({"primary_ip": "127.0.0.01"}, "UDAPI1183"),
        ({"primary_ip": "127.0.0.2/32"}, "UDAPI1183"),
        ({"primary_ip": "fe80::1%eth0"}, "UDAPI1183"),
        ({"primary_ip": " 127.0.0.2"}, "UDAPI1183"),
        ({"primary_ip": 2130706434}, "UDAPI1183"),
        ({"primary_ip": True}, "UDAPI1183"),
        ({"primary_ip": "0.0.0.0"}, "UDAPI1183"),
        ({"primary_ip": "224.0.0.1"}, "UDAPI1183"),
        ({"primary_ip": "255.255.255.255"}, "UDAPI1183"),
        ({"primary_ip": "127.0.0.2", "secondary_ip": ["127.0.0.3"]}, "UDAPI1183"),
        ({"primary_ip": "127.0.0.2", "secondary_ip": "127.0.0.2"}, "UDAPI1184"),
        ({"primary_ip": "127.0.0.2", "secondary_ip": "::ffff:127.0.0.2"}, "UDAPI1184"),
    ],
)
async def test_bad_updates_are_refused_with_upstox_codes_and_change_nothing(
    gw: Harness, body: Any, code: str
) -> None:
    login = await gw.login(await gw.account())
    reply = await put(gw, login, body)
    assert 400 <= reply.status < 500
    assert reply.error_code == code
    still = await gw.request("GET", "/v2/user/ip", headers=login.bearer)
    assert still.status == 200 and still.data["data"]["primary_ip"] is None


async def test_a_second_change_within_the_period_is_refused_until_seven_days_pass(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    gw.clock.advance(6 * 86400 + 86399)
    trader = await gw.login(trader)
    too_soon = await put(gw, trader, {"primary_ip": "127.0.0.3"})
    assert too_soon.status == 400 and too_soon.error_code == "UDAPI1185"
    assert "next change allowed" in too_soon.message
    gw.clock.advance(1)
    assert (await put(gw, trader, {"primary_ip": "127.0.0.3"})).status == 200


async def test_an_ipv4_mapped_address_is_stored_as_ipv4(gw: Harness) -> None:
    login = await gw.login(await gw.account())
    reply = await put(gw, login, {"primary_ip": "::ffff:127.0.0.2"})
    assert reply.data["data"]["primary_ip"] == "127.0.0.2"


async def test_an_ip_registered_by_another_client_is_refused_with_409(gw: Harness) -> None:
    await gw.trader("127.0.0.2")
    login = await gw.login(await gw.account())
    reply = await put(gw, login, {"primary_ip": "::ffff:127.0.0.2"})
    assert reply.status == 409
    assert (await gw.request("GET", "/v2/user/ip", headers=login.bearer)).data["data"][
        "primary_ip"
    ] is None


async def test_of_two_concurrent_changes_exactly_one_wins(gw: Harness) -> None:
    account = await gw.account()
    first, second = await gw.login(account), await gw.login(account)

    replies = await asyncio.gather(
        put(gw, first, {"primary_ip": "127.0.0.2"}), put(gw, second, {"primary_ip": "127.0.0.3"})
    )

    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 409]
    loser = next(r for r in replies if r.status == 409)
    assert loser.error_code == "UDAPI1186"
    winner = next(r for r in replies if r.status == 200)
    fresh = await gw.login(account)
    now = await gw.request("GET", "/v2/user/ip", headers=fresh.bearer)
    assert now.data["data"]["primary_ip"] == winner.data["data"]["primary_ip"]


async def test_a_calendar_week_policy_counts_iso_weeks_across_the_new_year(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(rules_ip_change="calendar_week")
    gw.clock.set(datetime(2026, 12, 31, 6, 0, tzinfo=UTC))  # Thu 2026-12-31, ISO 2026-W53
    trader = await gw.trader("127.0.0.2")
    gw.clock.set(datetime(2027, 1, 1, 6, 0, tzinfo=UTC))  # Fri 2027-01-01, still 2026-W53
    trader = await gw.login(trader)
    assert (await put(gw, trader, {"primary_ip": "127.0.0.3"})).error_code == "UDAPI1185"
    gw.clock.set(datetime(2027, 1, 3, 18, 29, 59, tzinfo=UTC))  # Sun 23:59:59 IST
    trader = await gw.login(trader)
    assert (await put(gw, trader, {"primary_ip": "127.0.0.3"})).error_code == "UDAPI1185"
    gw.clock.set(datetime(2027, 1, 3, 18, 30, tzinfo=UTC))  # Mon 2027-01-04 00:00 IST
    trader = await gw.login(trader)
    assert (await put(gw, trader, {"primary_ip": "127.0.0.3"})).status == 200


async def test_admin_override_skips_the_cooldown_and_is_audited(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.admin("PUT", f"/accounts/{trader.user_id}/ip", {"primary_ip": "127.0.0.3"})
    assert reply.status == 200 and reply.data["data"]["primary_ip"] == "127.0.0.3"
    assert (await gw.place(trader, order_type="LIMIT", price=1400)).status == 401
    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=2")
    refused, override = audit.data["data"]  # newest first
    assert refused["decision"] == "refused" and refused["reason"] == "invalid_token"
    assert override["decision"] == "admin_ip_override"
    assert override["rewritten"]["primary_ip"] == "127.0.0.3"
