"""Redis Sentinel failover under load (SPEC §11): the gateway follows the new primary.

A primary, a replica and three Sentinels run on loopback; three traders place orders through
one gateway whose store names the Sentinels; the primary is killed mid-load. Every order is
either forwarded once or refused with nothing sent, none is told "nothing was sent" after it
reached the broker, and orders go through again from the new primary within the Sentinels'
failover time plus a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import FakeClock

from ..conftest import GatewayFactory
from ..harness import Harness, Login
from .sentinels import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, sentinel_group

pytestmark = pytest.mark.redis

LOAD_S = 9.0
KILL_AFTER_S = 2.0


async def trade(
    gw: Harness, trader: Login, clock: FakeClock, name: str, results: list[dict[str, Any]]
) -> None:
    deadline = time.monotonic() + LOAD_S
    n = 0
    while time.monotonic() < deadline:
        n += 1
        tag = f"{name}-{n}"
        clock.advance(0.2)  # a fake second passes every 5 orders: never rate-limited
        reply = await gw.place(trader, order_type="LIMIT", price=1400, tag=tag)
        results.append(
            {
                "tag": tag,
                "at": time.monotonic(),
                "status": reply.status,
                "outcome": (reply.data or {}).get("outcome") if reply.data else None,
                "code": reply.error_code,
            }
        )
        await asyncio.sleep(0.05)


async def test_orders_through_a_primary_failover(
    tmp_path: Path, make_gateway: GatewayFactory, clock: FakeClock
) -> None:
    async with sentinel_group(tmp_path) as group:
        old_primary = await group.primary_address()
        gw = await make_gateway(store_url=group.url("sentinel-test:"))
        traders = [await gw.trader(f"127.0.0.{n}") for n in (2, 3, 4)]
        results: list[dict[str, Any]] = []
        load = [
            asyncio.create_task(trade(gw, trader, clock, f"t{i}", results))
            for i, trader in enumerate(traders)
        ]
        await asyncio.sleep(KILL_AFTER_S)
        killed_at = time.monotonic()
        group.kill(group.primary_port)
        await asyncio.gather(*load)

        assert await group.primary_address() != old_primary  # the Sentinels did fail over
        arrived = Counter(order["body"]["tag"] for order in await gw.upstream_orders())
        statuses = Counter(r["status"] for r in results)
        assert set(statuses) <= {200, 502, 503, 504}, statuses
        # No order reached the broker twice.
        assert [tag for tag, n in arrived.items() if n > 1] == []
        for r in results:
            if r["status"] == 200:
                assert arrived[r["tag"]] == 1, r
            elif r["status"] == 503:
                # "nothing was sent" must be true: the broker never saw it
                assert r["outcome"] in (None, "not_sent"), r
                assert arrived[r["tag"]] == 0, r
        # Refusals while no primary answered, then orders again from the new primary.
        after = [r for r in results if r["at"] > killed_at]
        assert any(r["status"] == 503 for r in after), statuses
        recovered = next(r["at"] for r in after if r["status"] == 200)
        budget_s = (DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS) / 1000 + 1
        assert recovered - killed_at < budget_s, recovered - killed_at
        assert results[-1]["status"] == 200
