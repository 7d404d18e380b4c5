"""The read APIs the console calls, and the console login that never takes an order slot.

Against a real gateway (``create_app`` with the paper broker on loopback), as the browser
calls them; each route answers about the caller's own account only."""

from __future__ import annotations

from typing import Any

from ..harness import RELIANCE, Harness, Login

WEEK = 7 * 24 * 3600


async def console_login(gw: Harness, login: Login, ip: str) -> Login:
    reply = await gw.request(
        "POST",
        "/gateway/v1/session",
        ip=ip,
        json={"api_key": login.api_key, "api_secret": login.api_secret, "console": True},
    )
    assert reply.status == 200, reply.body
    data = reply.data["data"]
    assert data["slot"] is None
    assert data["order_capable"] is False
    return Login(login.user_id, login.api_key, login.api_secret, data["access_token"],
                 data["session_id"], ip)  # fmt: skip


async def get(gw: Harness, login: Login, path: str) -> Any:
    reply = await gw.request("GET", path, ip=login.ip, headers=login.bearer)
    assert reply.status == 200, reply.body
    return reply.data["data"]


async def test_a_console_login_from_the_registered_ip_leaves_the_strategy_its_slot(
    gw: Harness,
) -> None:
    strategy = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    console = await console_login(gw, strategy, ip="127.0.0.2")  # same IP as the strategy

    assert (await gw.place(strategy)).status == 200
    refused = await gw.place(console)
    assert refused.status == 403
    assert refused.error_code == "UDAPI1154"
    assert "holds no order slot" in refused.message
    sessions = (await get(gw, console, "/gateway/v1/sessions"))["sessions"]
    holders = {s["session_id"]: s["holds_slot"] for s in sessions}
    assert holders == {strategy.session_id: "primary", console.session_id: None}


async def test_a_plain_login_still_takes_the_slot(gw: Harness) -> None:
    strategy = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    newer = await gw.login(strategy, ip="127.0.0.2")
    assert (await gw.place(newer)).status == 200
    assert (await gw.place(strategy)).error_code == "UDAPI1154"


async def test_console_must_be_a_boolean(gw: Harness) -> None:
    login = await gw.account()
    reply = await gw.request(
        "POST",
        "/gateway/v1/session",
        json={"api_key": login.api_key, "api_secret": login.api_secret, "console": "yes"},
    )
    assert reply.status == 400
    assert reply.data["error"] == "BAD_REQUEST"


async def test_sessions_list_the_callers_own_without_tokens(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    console = await console_login(gw, trader, ip="127.0.0.5")
    other = await gw.trader("127.0.0.3")

    sessions = (await get(gw, console, "/gateway/v1/sessions"))["sessions"]
    assert [s["session_id"] for s in sessions] == [trader.session_id, console.session_id]
    assert [s["created_ip"] for s in sessions] == ["127.0.0.2", "127.0.0.5"]
    assert [s["current"] for s in sessions] == [False, True]
    assert other.session_id not in str(sessions)
    assert trader.token not in str(sessions) and console.token not in str(sessions)


async def test_log_out_one_of_the_accounts_sessions_and_nobody_elses(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    console = await console_login(gw, trader, ip="127.0.0.5")
    other = await gw.trader("127.0.0.3")

    foreign = await gw.request(
        "DELETE", f"/gateway/v1/sessions/{other.session_id}", ip="127.0.0.5",
        headers=console.bearer,
    )  # fmt: skip
    assert foreign.status == 404
    assert (await gw.request("GET", "/v2/user/ip", ip=other.ip, headers=other.bearer)).status == 200

    ended = await gw.request(
        "DELETE", f"/gateway/v1/sessions/{trader.session_id}", ip="127.0.0.5",
        headers=console.bearer,
    )  # fmt: skip
    assert ended.status == 200
    assert ended.data["data"] == {"session_id": trader.session_id}
    gone = await gw.request("GET", "/v2/user/ip", ip=trader.ip, headers=trader.bearer)
    assert gone.status == 401
    assert [
        s["session_id"] for s in (await get(gw, console, "/gateway/v1/sessions"))["sessions"]
    ] == [console.session_id]


async def test_an_api_token_may_not_log_out_sessions(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    made = await gw.request(
        "POST", "/v1/account/tokens", ip=trader.ip, json={}, headers=trader.bearer
    )
    assert made.status == 200, made.body
    token = {"Authorization": f"Bearer {made.data['token']}"}
    reply = await gw.request(
        "DELETE", f"/gateway/v1/sessions/{trader.session_id}", ip=trader.ip, headers=token
    )
    assert reply.status == 403
    assert (
        await gw.request("GET", "/v2/user/ip", ip=trader.ip, headers=trader.bearer)
    ).status == 200


async def test_decisions_and_orders_per_second_are_the_callers_own(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    other = await gw.trader("127.0.0.3")
    await gw.push_ltp({RELIANCE: "1401.5"})
    for _ in range(3):
        assert (await gw.place(trader)).status == 200
    assert (await gw.place(trader, ip="127.0.0.9")).status == 403  # refused: not counted
    assert (await gw.place(other)).status == 200
    gw.clock.advance(1)

    decisions = (await get(gw, trader, "/gateway/v1/decisions?limit=10"))["decisions"]
    assert [d["decision"] for d in decisions] == ["refused", "admitted", "admitted", "admitted"]
    assert {d["user_id"] for d in decisions} == {trader.user_id}
    assert decisions[0]["reason"] == "ip_not_registered"
    assert decisions[1]["conversions"][0]["ltp"] == "1401.5"
    assert len((await get(gw, trader, "/gateway/v1/decisions?limit=2"))["decisions"]) == 2

    series = await get(gw, trader, "/gateway/v1/orders-per-second?minutes=1")
    assert series["limit"] == 10
    assert series["seconds"] == 60
    assert series["orders"][-1] == 3
    assert sum(series["orders"]) == 3
    gw.clock.advance(61)
    assert sum((await get(gw, trader, "/gateway/v1/orders-per-second?minutes=1"))["orders"]) == 0


async def test_bad_limits_are_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    for path in (
        "/gateway/v1/decisions?limit=0",
        "/gateway/v1/decisions?limit=10001",
        "/gateway/v1/decisions?limit=x",
        "/gateway/v1/orders-per-second?minutes=61",
    ):
        reply = await gw.request("GET", path, ip=trader.ip, headers=trader.bearer)
        assert reply.status == 400, path
        assert reply.data["error"] == "BAD_REQUEST"


async def test_ip_change_counts_down_on_the_servers_clock(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    first = await get(gw, trader, "/gateway/v1/ip-change")
    assert first["policy"] == "rolling_7d"
    assert first["may_change"] is True
    remaining = _seconds(first["next_change_at"]) - _seconds(first["now"])
    assert remaining == WEEK
    gw.clock.advance(WEEK)
    again = await gw.login(trader, ip="127.0.0.2")  # the daily logout ended the first session
    assert (await get(gw, again, "/gateway/v1/ip-change"))["next_change_at"] is None


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def test_the_operator_overview(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")
    await console_login(gw, trader, ip="127.0.0.5")
    await gw.push_ltp({RELIANCE: "1401.5"})
    assert (await gw.place(trader)).status == 200
    assert (await gw.place(trader, ip="127.0.0.9")).status == 403

    assert (await gw.request("GET", "/admin/v1/overview")).status == 401
    egress = await gw.admin("PUT", f"/accounts/{trader.user_id}/egress", {"ip": "127.0.0.4"})
    assert egress.status in (200, 204), egress.body
    reply = await gw.admin("GET", "/overview")
    assert reply.status == 200, reply.body
    data = reply.data["data"]
    (row,) = [a for a in data["accounts"] if a["user_id"] == trader.user_id]
    assert row["primary_ip"] == "127.0.0.2"
    assert row["secondary_ip"] == "127.0.0.3"
    assert row["sessions"] == 2
    assert row["family_members"] == 0
    assert row["egress_ip"] == "127.0.0.4"
    reasons = {(d["reason"], d["count"]) for d in data["decisions_per_minute"]}
    assert reasons == {("ok", 1), ("ip_not_registered", 1)}
    assert data["upstream_latency_ms"]["count"] == 1
    assert data["instruments"]["count"] > 0
    assert data["instruments"]["age_s"] is None


async def test_a_trader_explains_its_own_refused_order_and_nobody_elses(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    other = await gw.trader("127.0.0.3")
    assert (await gw.place(trader, ip="127.0.0.9", order_type="LIMIT", price=1400)).status == 403
    [refused] = (await get(gw, trader, "/gateway/v1/decisions?limit=1"))["decisions"]
    path = f"/gateway/v1/decisions/{refused['audit_id']}/explain"

    answer = await get(gw, trader, path)

    assert (answer["decision"], answer["status"], answer["reason"]) == (
        "refused",
        403,
        "IP_NOT_REGISTERED",
    )
    [failed] = [step for step in answer["steps"] if not step["ok"]]
    assert failed["step"] == "registered_ip" and "127.0.0.9" in failed["detail"]
    assert answer["recorded"]["reason"] == "ip_not_registered"
    # another account's record is as unknown as a made-up id; no credential is 401
    assert (await gw.request("GET", path, ip=other.ip, headers=other.bearer)).status == 404
    assert (await gw.request("GET", path, ip=trader.ip)).status == 401
    assert await gw.upstream_requests() == []
