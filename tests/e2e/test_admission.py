"""SPEC §5 admission, driven from real source addresses 127.0.0.2 / 127.0.0.3."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..conftest import GatewayFactory
from ..harness import Harness, market_order

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}
BLOCKED = "Access to this API is blocked due to static IP restrictions"


async def test_order_from_an_unregistered_ip_is_refused_and_nothing_goes_upstream(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    stranger = await gw.login(trader, ip="127.0.0.4")

    reply = await gw.place(stranger, **LIMIT)

    assert reply.status == 403
    assert reply.error_code == "UDAPI1154"
    assert reply.message == (
        f"{BLOCKED}: the order came from 127.0.0.4, which is not a registered IP of this"
        " account; registered IPs: 127.0.0.2"
    )
    assert await gw.upstream_orders() == []
    assert [r for r in await gw.upstream_requests() if "/order/" in r["path"]] == []


async def test_session_created_from_another_registered_ip_is_refused_naming_both(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")

    reply = await gw.place(trader, ip="127.0.0.3", **LIMIT)

    assert reply.status == 403
    assert reply.error_code == "UDAPI1154"
    assert "127.0.0.2" in reply.message and "127.0.0.3" in reply.message
    assert "created from 127.0.0.2" in reply.message
    assert await gw.upstream_orders() == []


async def test_both_registered_ips_trade_each_with_its_own_slot(gw: Harness) -> None:
    first = await gw.trader("127.0.0.2", "127.0.0.3")
    second = await gw.login(first, ip="127.0.0.3")

    assert (await gw.place(first, **LIMIT)).status == 200
    assert (await gw.place(second, **LIMIT)).status == 200
    assert len(await gw.upstream_orders()) == 2


async def test_newer_session_from_the_same_ip_takes_the_slot_older_keeps_reads(gw: Harness) -> None:
    older = await gw.trader("127.0.0.2")
    newer = await gw.login(older, ip="127.0.0.2")

    refused = await gw.place(older, **LIMIT)
    assert refused.status == 403
    assert refused.error_code == "UDAPI1154"
    assert "newer session" in refused.message
    reads = await gw.request("GET", "/v2/portfolio/long-term-holdings", headers=older.bearer)
    assert reads.status == 200
    assert (await gw.place(newer, **LIMIT)).status == 200
    assert len(await gw.upstream_orders()) == 1


async def test_login_reports_whether_the_session_can_trade(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.request(
        "POST",
        "/gateway/v1/session",
        ip="127.0.0.5",
        json={"api_key": trader.api_key, "api_secret": trader.api_secret},
    )
    data = reply.data["data"]
    assert data["created_ip"] == "127.0.0.5"
    assert data["slot"] is None and data["order_capable"] is False
    assert set(data) == {
        "access_token",
        "session_id",
        "user_id",
        "created_ip",
        "slot",
        "order_capable",
        "expires_at",
    }


async def test_a_client_that_moved_ip_keeps_reads_and_loses_orders(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    moved = await gw.place(trader, ip="127.0.0.6", **LIMIT)
    reads = await gw.request("GET", "/v2/user/profile", ip="127.0.0.6", headers=trader.bearer)

    assert moved.status == 403
    assert reads.status == 200
    assert reads.data["data"]["user_id"] == trader.user_id


async def test_after_an_ip_change_every_old_token_is_refused_on_every_route(gw: Harness) -> None:
    registered = await gw.trader("127.0.0.2", "127.0.0.3")
    gw.clock.advance(7 * 86400)  # past the cooldown (and past daily logouts: log in again)
    trader = await gw.login(registered, ip="127.0.0.2")
    other = await gw.login(registered, ip="127.0.0.3")

    changed = await gw.set_ips(trader, "127.0.0.2", "127.0.0.4")
    assert changed.status == 200 and changed.data["data"]["access_tokens_invalidated"] is True

    for token in (trader, other):
        assert (await gw.place(token, **LIMIT)).status == 401
        assert (
            await gw.request("GET", "/v2/portfolio/long-term-holdings", headers=token.bearer)
        ).status == 401
        ip_read = await gw.request("GET", "/v2/user/ip", headers=token.bearer)
        assert ip_read.status == 401 and ip_read.error_code == "UDAPI100050"
    assert await gw.upstream_orders() == []


async def test_the_eleventh_order_inside_one_second_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    replies = [await gw.place(trader, **LIMIT) for _ in range(11)]

    assert [r.status for r in replies] == [200] * 10 + [429]
    assert replies[10].error_code == "UDAPI10005"
    assert replies[10].headers["Retry-After"] == "1"
    assert len(await gw.upstream_orders()) == 10
    gw.clock.advance(1.0)
    assert (await gw.place(trader, **LIMIT)).status == 200


async def test_the_limit_is_a_rolling_window_not_a_calendar_second(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    gw.clock.advance(0.990)
    assert [(await gw.place(trader, **LIMIT)).status for _ in range(10)] == [200] * 10
    gw.clock.advance(0.020)  # now 1.010 s: a new calendar second, same rolling second
    assert (await gw.place(trader, **LIMIT)).status == 429
    gw.clock.advance(0.980)  # 1.990 s: the first ten are a full second old
    assert (await gw.place(trader, **LIMIT)).status == 200


async def test_refused_requests_do_not_count_against_the_limit(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    for _ in range(10):
        assert (await gw.place(trader, ip="127.0.0.7", **LIMIT)).status == 403
        bad = await gw.request("POST", "/v2/order/place", data=b"{", headers=trader.bearer)
        assert bad.status == 400
    assert [(await gw.place(trader, **LIMIT)).status for _ in range(10)] == [200] * 10


async def test_accounts_are_limited_separately(gw: Harness) -> None:
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    for _ in range(10):
        assert (await gw.place(first, **LIMIT)).status == 200
    assert (await gw.place(second, **LIMIT)).status == 200


async def test_sessions_end_at_the_daily_logout(gw: Harness) -> None:
    gw.clock.set(datetime(2026, 11, 16, 21, 0, tzinfo=UTC))  # 02:30 IST on the 17th
    trader = await gw.trader("127.0.0.2")
    assert (await gw.place(trader, **LIMIT)).status == 200
    gw.clock.set(datetime(2026, 11, 16, 21, 59, 59, tzinfo=UTC))  # 03:29:59 IST
    assert (await gw.place(trader, **LIMIT)).status == 200
    gw.clock.set(datetime(2026, 11, 16, 22, 0, tzinfo=UTC))  # 03:30 IST
    reply = await gw.place(trader, **LIMIT)
    assert reply.status == 401 and reply.error_code == "UDAPI100050"


async def test_logout_and_admin_revocation_end_a_session_at_once(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    out = await gw.request("DELETE", "/gateway/v1/session", headers=trader.bearer)
    assert out.status == 200
    assert (await gw.place(trader, **LIMIT)).status == 401

    again = await gw.login(trader)
    revoked = await gw.admin("DELETE", f"/sessions/{again.session_id}")
    assert revoked.status == 204
    assert (await gw.place(again, **LIMIT)).status == 401


async def test_missing_or_unknown_token_is_401_in_the_upstox_envelope(gw: Harness) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        reply = await gw.request("POST", "/v2/order/place", json=market_order(), headers=headers)
        assert reply.status == 401
        assert reply.data["status"] == "error"
        assert reply.data["errors"][0]["error_code"] == "UDAPI100050"
        assert set(reply.data["errors"][0]) == {
            "error_code",
            "message",
            "property_path",
            "invalid_value",
        }
    assert await gw.upstream_requests() == []


async def test_queue_mode_holds_an_order_until_the_window_frees(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(rules_rate_limit_mode="queue", rules_queue_max_wait_ms="1500")
    trader = await gw.trader("127.0.0.2")
    assert [(await gw.place(trader, **LIMIT)).status for _ in range(10)] == [200] * 10
    before = gw.clock.monotonic()

    held = await gw.place(trader, **LIMIT)

    assert held.status == 200
    assert gw.clock.monotonic() - before >= 1.0  # it waited (on the injected clock) for a slot
    assert len(await gw.upstream_orders()) == 11


async def test_queue_mode_refuses_when_the_wait_would_exceed_the_limit(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(rules_rate_limit_mode="queue", rules_queue_max_wait_ms="500")
    trader = await gw.trader("127.0.0.2")
    assert [(await gw.place(trader, **LIMIT)).status for _ in range(10)] == [200] * 10
    before = gw.clock.monotonic()
    reply = await gw.place(trader, **LIMIT)
    assert reply.status == 429
    assert gw.clock.monotonic() == before  # refused at once: no point waiting past the limit
