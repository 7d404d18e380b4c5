"""SPEC §12: health, readiness, metrics, the admin API, the audit log, fail-closed, the CLI."""

from __future__ import annotations

import json
from typing import Any

from gateway.services import SERVICES

from ..conftest import GatewayFactory
from ..harness import ADMIN_TOKEN, RELIANCE, Harness

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


async def test_health_and_readiness(gw: Harness) -> None:
    assert (await gw.request("GET", "/healthz")).status == 200
    ready = await gw.request("GET", "/readyz")
    assert ready.status == 200 and ready.data == {"status": "ready"}


async def test_not_ready_when_the_upstream_is_unreachable(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(upstream_upstox="http://127.0.0.1:9")
    ready = await gw.request("GET", "/readyz")
    assert ready.status == 503
    assert any("upstox" in problem for problem in ready.data["problems"])


async def test_metrics_count_decisions_conversions_and_rate_limits(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    await gw.place(trader)
    for _ in range(10):
        await gw.place(trader, **LIMIT)
    await gw.place(trader, ip="127.0.0.9", **LIMIT)

    text = (await gw.request("GET", "/metrics")).body.decode()

    assert 'gateway_conversions_total{dialect="upstox"} 1.0' in text
    assert 'gateway_rate_limited_total{dialect="upstox"} 1.0' in text
    admitted = 'decision="admitted",dialect="upstox",reason="ok",route_class="place"'
    assert f"gateway_decisions_total{{{admitted}}} 10.0" in text
    assert 'reason="ip_not_registered"' in text
    assert "gateway_upstream_latency_seconds_count" in text
    assert "gateway_overhead_seconds_count" in text


async def test_the_admin_api_needs_the_admin_token(gw: Harness) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        reply = await gw.request("GET", "/admin/v1/accounts", headers=headers)
        assert reply.status == 401
        assert reply.data["error"] == "INVALID_TOKEN"


async def test_without_an_admin_token_the_admin_api_is_off(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(admin_token="")
    reply = await gw.request("GET", "/admin/v1/accounts", headers={"Authorization": "Bearer "})
    assert reply.status == 403


async def test_admin_api_shapes(gw: Harness) -> None:
    created = await gw.admin("POST", "/accounts", {"user_id": "AB1234", "name": "Asha"})
    assert created.status == 201 and created.data["user_id"] == "AB1234"
    assert (await gw.admin("POST", "/accounts", {"user_id": "AB1234", "name": "x"})).status == 409
    assert (await gw.admin("POST", "/accounts", {"user_id": 7, "name": "x"})).status == 400
    app = await gw.admin("POST", "/accounts/AB1234/apps")
    assert app.status == 201 and set(app.data) >= {"api_key", "api_secret"}
    assert (await gw.admin("POST", "/accounts/NOPE/apps")).status == 404
    listed = await gw.admin("GET", "/accounts")
    assert [a["user_id"] for a in listed.data["data"]] == ["AB1234"]
    assert (await gw.admin("PUT", "/ltp", {RELIANCE: 1401.5})).status == 204
    for bad in ({RELIANCE: -1}, {RELIANCE: True}, {RELIANCE: "abc"}, {}, [1]):
        assert (await gw.admin("PUT", "/ltp", bad)).status == 400


async def test_every_order_decision_is_audited_with_the_original_and_rewritten_order(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    await gw.place(trader, tag="audited")
    await gw.place(trader, ip="127.0.0.9", **LIMIT)

    reply = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=10")
    refused, admitted = reply.data["data"][:2]

    assert admitted["decision"] == "admitted"
    assert admitted["client_ip"] == "127.0.0.2"
    assert admitted["session_id"] == trader.session_id
    assert admitted["path"] == "/v2/order/place"
    assert admitted["original"][0]["order_type"] == "MARKET"
    assert admitted["rewritten"][0]["order_type"] == "LIMIT"
    assert admitted["conversions"][0] == {
        "order_type": "LIMIT",
        "limit_price": "1408.5",
        "reference": "1401.5",
        "ltp": "1401.5",
        "band": "7.0075",
    }
    assert admitted["upstream_status"] == 200
    assert admitted["upstream_latency_ms"] > 0
    assert admitted["order_ids"]
    assert refused["decision"] == "refused" and refused["reason"] == "ip_not_registered"
    assert refused["client_ip"] == "127.0.0.9"
    assert trader.token not in reply.body.decode()


async def test_order_routes_fail_closed_when_the_store_cannot_answer(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.gateway.app[SERVICES].store.close()

    reply = await gw.place(trader, **LIMIT)

    assert reply.status == 503 and reply.error_code == "UDAPI9503"
    assert await gw.upstream_orders() == []


async def cli(gw: Harness, *args: str) -> Any:
    code, out, err = await gw.cli(*args)
    assert code == 0, err
    return json.loads(out)


async def test_the_cli_admin_commands_drive_a_running_gateway(gw: Harness) -> None:
    added = await cli(gw, "accounts", "add", "CLI001", "Ravi")
    assert added["user_id"] == "CLI001"
    assert [a["user_id"] for a in (await cli(gw, "accounts", "list"))["data"]] == ["CLI001"]
    app = await cli(gw, "apps", "create", "CLI001")
    assert app["api_key"] and app["api_secret"]
    changed = await cli(gw, "ip", "set", "CLI001", "127.0.0.2", "127.0.0.3")
    assert changed["data"]["primary_ip"] == "127.0.0.2"
    shown = await cli(gw, "ip", "show", "CLI001")
    assert shown["data"]["secondary_ip"] == "127.0.0.3"
    tail = await cli(gw, "audit", "tail", "--user-id", "CLI001", "--limit", "5")
    assert tail["data"][0]["decision"] == "admin_ip_override"


async def test_not_ready_when_a_named_host_is_unreachable(make_gateway: GatewayFactory) -> None:
    # SPEC §14: orders go to upstream.upstox_orders; its dialect's base answering is not enough
    gw = await make_gateway(upstream_upstox_orders="http://127.0.0.1:9")
    ready = await gw.request("GET", "/readyz")
    assert ready.status == 503
    upstreams = [p.split(":")[0] for p in ready.data["problems"] if p.startswith("upstream ")]
    assert upstreams == ["upstream upstox.orders"]
