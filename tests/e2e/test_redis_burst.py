"""A burst through two gateway instances on one Redis (SPEC §7, §11): 40 accounts send 12
orders each, all at once. The store is a queue, not a cliff: every account gets exactly its
10 orders forwarded and 2 refused with 429, nothing is refused as "store unavailable", and no
order reaches the broker twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from ..conftest import GatewayFactory
from ..harness import Harness, Login

pytestmark = pytest.mark.redis

ACCOUNTS = 40
ORDERS = 12


async def test_forty_accounts_twelve_orders_each_through_two_instances(
    redis_store_url: str, make_gateway: GatewayFactory
) -> None:
    a = await make_gateway(store_url=redis_store_url)
    b = await make_gateway(store_url=redis_store_url)
    traders: list[Login] = [await a.trader(f"127.0.1.{n}") for n in range(1, ACCOUNTS + 1)]

    async def order(gw: Harness, trader: Login, n: int) -> tuple[str, int, str | None]:
        tag = f"{trader.user_id}-{n}"
        reply = await gw.place(trader, order_type="LIMIT", price=1400, tag=tag)
        return trader.user_id, reply.status, reply.error_code

    results = await asyncio.gather(
        *(order(a if n % 2 else b, trader, n) for n in range(ORDERS) for trader in traders)
    )

    by_account: dict[str, Counter[int]] = {}
    for user_id, status, _ in results:
        by_account.setdefault(user_id, Counter())[status] += 1
    assert Counter(status for _, status, _ in results) == {200: 400, 429: 80}
    assert all(c == {200: 10, 429: 2} for c in by_account.values()), by_account
    arrived = Counter(o["body"]["tag"] for o in await a.upstream_orders())
    assert len(arrived) == 400
    assert set(arrived.values()) == {1}
