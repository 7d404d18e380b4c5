"""Two gateway instances sharing one Redis store, in front of one paper broker (SPEC §4, §7,
§11): what one instance does is in force on the other before it answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.clock import FakeClock

from ..conftest import GatewayFactory
from ..harness import Harness

pytestmark = pytest.mark.redis

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


@pytest.fixture
async def pair(redis_store_url: str, make_gateway: GatewayFactory) -> tuple[Harness, Harness]:
    """Gateways A and B: two apps, two in-process caches, one store."""
    a = await make_gateway(store_url=redis_store_url, rules_ip_change="calendar_week")
    b = await make_gateway(store_url=redis_store_url, rules_ip_change="calendar_week")
    return a, b


async def test_a_session_created_on_a_trades_on_b(pair: tuple[Harness, Harness]) -> None:
    a, b = pair
    trader = await a.trader("127.0.0.2")

    reply = await b.place(trader, **LIMIT)

    assert reply.status == 200, reply.body
    orders = await b.upstream_orders()
    assert len(orders) == 1


async def test_ip_change_on_a_refuses_the_old_token_on_b_at_once(
    pair: tuple[Harness, Harness], clock: FakeClock
) -> None:
    a, b = pair
    # Sunday 22:00 IST: register and trade; the next ISO week (and a new change) starts at
    # midnight, before the session's 03:30 logout.
    clock.set(datetime(2026, 11, 22, 16, 30, tzinfo=UTC))
    trader = await a.trader("127.0.0.2")
    assert (await b.place(trader, **LIMIT)).status == 200  # B has the snapshot cached now
    clock.set(datetime(2026, 11, 22, 19, 0, tzinfo=UTC))  # Monday 00:30 IST

    changed = await a.set_ips(trader, "127.0.0.2", "127.0.0.3")
    assert changed.status == 200, changed.body
    assert changed.data["data"]["access_tokens_invalidated"] is True

    refused = await b.place(trader, **LIMIT)
    assert refused.status == 401
    assert refused.error_code == "UDAPI100050"
    assert len(await b.upstream_orders()) == 1
    # Logging in again (on either instance) from the registered IP trades again.
    again = await b.login(trader, ip="127.0.0.3")
    assert (await a.place(again, **LIMIT)).status == 200


async def test_a_newer_session_on_b_takes_the_slot_from_a_session_used_on_a(
    pair: tuple[Harness, Harness],
) -> None:
    a, b = pair
    older = await a.trader("127.0.0.2")
    assert (await a.place(older, **LIMIT)).status == 200
    newer = await b.login(older, ip="127.0.0.2")

    refused = await a.place(older, **LIMIT)
    assert refused.status == 403
    assert "newer session" in refused.message
    assert (await a.place(newer, **LIMIT)).status == 200


async def test_logout_on_b_ends_the_session_on_a(pair: tuple[Harness, Harness]) -> None:
    a, b = pair
    trader = await a.trader("127.0.0.2")
    assert (await a.place(trader, **LIMIT)).status == 200

    out = await b.request("DELETE", "/gateway/v1/session", headers=trader.bearer)
    assert out.status == 200, out.body

    assert (await a.place(trader, **LIMIT)).status == 401
    reads = await a.request("GET", "/v2/portfolio/long-term-holdings", headers=trader.bearer)
    assert reads.status == 401


async def test_the_rate_limit_holds_across_both_gateways(pair: tuple[Harness, Harness]) -> None:
    a, b = pair
    trader = await a.trader("127.0.0.2")

    statuses = [(await (a if i % 2 else b).place(trader, **LIMIT)).status for i in range(10)]
    assert statuses == [200] * 10
    for gateway in (a, b):
        refused = await gateway.place(trader, **LIMIT)
        assert refused.status == 429
        assert refused.error_code == "UDAPI10005"
        assert float(refused.headers["Retry-After"]) > 0
    assert len(await a.upstream_orders()) == 10
