"""SPEC §12: graceful shutdown drains in-flight orders (the real process, SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..harness import market_order
from ..process import clean_env, free_port, start, wait_until_up

ADMIN = {"Authorization": "Bearer drain-admin"}
ORDER = market_order(order_type="LIMIT", price=1400, tag="drain")


async def test_sigterm_lets_an_in_flight_order_finish(aiohttp_server: Any, tmp_path: Path) -> None:
    arrived = asyncio.Event()

    async def slow_broker(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(0.5)
        return web.json_response({"status": "success", "data": {"order_id": "D1"}})

    broker = web.Application()
    broker.router.add_post("/v2/order/place", slow_broker)
    upstream = await aiohttp_server(broker)
    port = free_port()
    gw = f"http://127.0.0.1:{port}"
    env = clean_env(
        GATEWAY_SERVER_PORT=str(port),
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/drain.db",
        GATEWAY_ADMIN_TOKEN="drain-admin",
        GATEWAY_UPSTREAM_UPSTOX=str(upstream.make_url("")).rstrip("/"),
    )
    process = await start(env, "serve")
    try:
        await wait_until_up(process, f"{gw}/healthz")
        async with aiohttp.ClientSession() as client:

            async def call(method: str, path: str, **kw: Any) -> Any:
                async with client.request(method, gw + path, **kw) as resp:
                    return resp.status, await resp.json()

            await call(
                "POST", "/admin/v1/accounts", json={"user_id": "D1", "name": "D"}, headers=ADMIN
            )
            _, app = await call("POST", "/admin/v1/accounts/D1/apps", headers=ADMIN)
            _, login = await call("POST", "/gateway/v1/session", json=app)
            bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
            await call("PUT", "/v2/user/ip", json={"primary_ip": "127.0.0.1"}, headers=bearer)
            _, login = await call("POST", "/gateway/v1/session", json=app)
            bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}

            order = asyncio.create_task(call("POST", "/v2/order/place", json=ORDER, headers=bearer))
            await asyncio.wait_for(arrived.wait(), 5)
            process.send_signal(signal.SIGTERM)
            status, answer = await order
    finally:
        _, stderr = await process.communicate()

    assert status == 200
    assert answer["data"]["order_id"] == "D1"
    assert process.returncode == 0, stderr.decode()
