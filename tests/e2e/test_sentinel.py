"""Redis Sentinel failover under load (SPEC §11): the gateway follows the new primary.

A primary, a replica and three Sentinels run on loopback; a real ``order-gateway serve``
process names the Sentinels in its store URL; three traders place orders through it and the
primary is killed mid-load. Every order is either forwarded once or refused with nothing
sent, none is told "nothing was sent" after it reached the broker, and orders go through
again from the new primary within the Sentinels' failover time plus a second.

The gateway runs as its own process, as in production: what redis-py's Sentinel discovery
leaves behind while every Sentinel is being asked for a primary that is gone is the gateway
process's business, not this test run's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ..harness import market_order
from ..process import clean_env, free_port, start, wait_until_up
from .sentinels import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, sentinel_group

pytestmark = pytest.mark.redis

ADMIN = {"Authorization": "Bearer sentinel-admin"}
LOAD_S = 9.0
KILL_AFTER_S = 2.0


class Trader:
    def __init__(self, gw: str, ip: str) -> None:
        self.gw, self.ip = gw, ip
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(ip, 0), force_close=True)
        )
        self.bearer: dict[str, str] = {}

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.client.request(method, self.gw + path, **kw) as resp:
            return resp.status, await resp.json()

    async def sign_up(self, user_id: str) -> None:
        body = {"user_id": user_id, "name": user_id}
        assert (await self.call("POST", "/admin/v1/accounts", json=body, headers=ADMIN))[0] == 201
        _, app = await self.call("POST", f"/admin/v1/accounts/{user_id}/apps", headers=ADMIN)
        _, login = await self.call("POST", "/gateway/v1/session", json=app)
        bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
        ip = {"primary_ip": self.ip}
        assert (await self.call("PUT", "/v2/user/ip", json=ip, headers=bearer))[0] == 200
        _, login = await self.call("POST", "/gateway/v1/session", json=app)
        self.bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}

    async def trade(self, name: str, results: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + LOAD_S
        n = 0
        while time.monotonic() < deadline:  # ~5 orders a second: never rate-limited
            n += 1
            tag = f"{name}-{n}"
            body = market_order(order_type="LIMIT", price=1400, tag=tag)
            status, answer = await self.call(
                "POST", "/v2/order/place", json=body, headers=self.bearer
            )
            outcome = answer.get("outcome") if isinstance(answer, dict) else None
            results.append(
                {"tag": tag, "at": time.monotonic(), "status": status, "outcome": outcome}
            )
            await asyncio.sleep(0.2)


async def test_orders_through_a_primary_failover(tmp_path: Path, paper: TestServer) -> None:
    async with sentinel_group(tmp_path) as group:
        old_primary = await group.primary_address()
        port = free_port()
        env = clean_env(
            GATEWAY_ADMIN_TOKEN="sentinel-admin",
            GATEWAY_SERVER_PORT=str(port),
            GATEWAY_STORE_URL=group.url("sentinel-test:"),
            GATEWAY_UPSTREAM_UPSTOX=str(paper.make_url("")).rstrip("/"),
        )
        process = await start(env, "serve")
        gw = f"http://127.0.0.1:{port}"
        traders = [Trader(gw, f"127.0.0.{n}") for n in (2, 3, 4)]
        try:
            await wait_until_up(process, f"{gw}/healthz")
            for n, trader in enumerate(traders):
                await trader.sign_up(f"S{n}")
            results: list[dict[str, Any]] = []
            load = [
                asyncio.create_task(trader.trade(f"t{i}", results))
                for i, trader in enumerate(traders)
            ]
            await asyncio.sleep(KILL_AFTER_S)
            killed_at = time.monotonic()
            group.kill(group.primary_port)
            await asyncio.gather(*load)
            new_primary = await group.primary_address()
        finally:
            for trader in traders:
                await trader.client.close()
            process.terminate()
            await process.communicate()

    assert new_primary != old_primary  # the Sentinels did fail over
    async with (
        aiohttp.ClientSession() as client,
        client.get(paper.make_url("/paper/orders")) as got,
    ):
        arrived = Counter(order["body"]["tag"] for order in (await got.json())["orders"])
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
