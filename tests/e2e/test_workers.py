"""``serve --workers N`` (SPEC §11): the real process and its workers on one port
(SO_REUSEPORT), sharing state through the Redis store, in front of the paper broker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ..gateway.stores.conftest import delete_prefix, redis_url, unique_prefix
from ..harness import market_order
from ..process import clean_env, free_port, start, wait_until_up

ADMIN_TOKEN = "workers-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LIMIT_ORDER = market_order(order_type="LIMIT", price=1400)


def fresh() -> aiohttp.ClientSession:
    """A client that opens a new connection per request, so the kernel picks a worker each
    time (SO_REUSEPORT spreads connections, not requests)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str

    async def stop(self) -> tuple[int, str]:
        """SIGTERM to the parent; its exit code and everything it (and its workers) logged."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(self.process.communicate(), 18)
        except TimeoutError:
            self.process.kill()
            _, err = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, err.decode()

    async def worker_pids(self) -> set[int]:
        """Every worker's pid, seen through ``/healthz`` over fresh connections."""
        pids: set[int] = set()
        deadline = time.monotonic() + 15
        async with fresh() as client:
            while len(pids) < 2 and time.monotonic() < deadline:
                async with client.get(f"{self.url}/healthz") as resp:
                    body = await resp.json()
                    assert resp.status == 200 and body["status"] == "ok", body
                    pids.add(body["pid"])
                await asyncio.sleep(0.02)
        return pids


@pytest.fixture
async def two_workers(paper: TestServer) -> AsyncIterator[Served]:
    """``serve --workers 2`` on a Redis prefix of its own (deleted after), upstream the paper
    broker; answered once the parent serves ``/healthz``."""
    prefix = unique_prefix()
    port = free_port()
    upstream = str(paper.make_url("")).rstrip("/")
    env = clean_env(
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
        GATEWAY_SERVER_PORT=str(port),
        GATEWAY_STORE_URL=redis_url(prefix),
        GATEWAY_UPSTREAM_UPSTOX=upstream,
    )
    served = Served(await start(env, "serve", "--workers", "2"), f"http://127.0.0.1:{port}")
    try:
        try:
            await wait_until_up(served.process, f"{served.url}/healthz")
        except AssertionError:
            raise AssertionError(await served.stop()) from None
        yield served
    finally:
        await served.stop()
        await delete_prefix(prefix)


@pytest.mark.redis
async def test_fresh_connections_reach_both_workers(two_workers: Served) -> None:
    pids = await two_workers.worker_pids()

    assert len(pids) == 2
    assert two_workers.process.pid in pids  # the parent is worker 0


@pytest.mark.redis
async def test_the_rate_window_is_shared_by_the_workers(
    two_workers: Served, paper: TestServer
) -> None:
    gw = two_workers.url
    async with fresh() as client:

        async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
            async with client.request(method, gw + path, **kw) as resp:
                return resp.status, await resp.json()

        status, _ = await call(
            "POST", "/admin/v1/accounts", json={"user_id": "W1", "name": "W"}, headers=ADMIN
        )
        assert status == 201
        status, app = await call("POST", "/admin/v1/accounts/W1/apps", headers=ADMIN)
        assert status == 201, app
        _, login = await call("POST", "/gateway/v1/session", json=app)
        bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
        status, _ = await call(
            "PUT", "/v2/user/ip", json={"primary_ip": "127.0.0.1"}, headers=bearer
        )
        assert status == 200
        status, login = await call("POST", "/gateway/v1/session", json=app)
        assert status == 200, login
        bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}

        # 11 orders at once, each on its own connection: whichever worker takes each one,
        # the second's window is the same Redis key.
        replies = await asyncio.gather(
            *(call("POST", "/v2/order/place", json=LIMIT_ORDER, headers=bearer) for _ in range(11))
        )

    statuses = sorted(status for status, _ in replies)
    assert statuses == [200] * 10 + [429], replies
    refused = next(body for status, body in replies if status == 429)
    assert refused["errors"][0]["error_code"] == "UDAPI10005"
    async with (
        aiohttp.ClientSession() as client,
        client.get(paper.make_url("/paper/orders")) as resp,
    ):
        assert len((await resp.json())["orders"]) == 10


@pytest.mark.redis
async def test_sigterm_stops_every_worker_and_the_parent_exits_0(two_workers: Served) -> None:
    children = await two_workers.worker_pids() - {two_workers.process.pid}
    assert len(children) == 1

    code, err = await two_workers.stop()

    assert code == 0, err
    assert "draining" in err
    assert "worker shutting down" in err  # the child got the forwarded signal and drained
    assert all(gone(pid) for pid in children)


@pytest.mark.redis
async def test_a_dead_worker_is_logged_not_restarted_and_the_others_keep_serving(
    two_workers: Served,
) -> None:
    (child,) = await two_workers.worker_pids() - {two_workers.process.pid}
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(child):  # the parent reaps it
        assert time.monotonic() < deadline, "the killed worker was not reaped"
        await asyncio.sleep(0.05)

    async with fresh() as client:
        for _ in range(10):
            async with client.get(f"{two_workers.url}/healthz") as resp:
                assert (await resp.json())["pid"] == two_workers.process.pid

    code, err = await two_workers.stop()
    assert f"(pid {child}) exited unexpectedly" in err
    assert err.count("worker 1 started") == 1
    assert code == 1  # not every worker exited cleanly


@pytest.mark.parametrize(
    ("store", "upstream", "args", "message"),
    [
        pytest.param(
            None,
            "http://127.0.0.1:9",
            ("--workers", "2"),
            "one SQLite file belongs to one process; several workers need store.url = redis://",
            id="sqlite",
        ),
        pytest.param(
            "redis://127.0.0.1:6379/15?prefix=never-used:",
            None,
            ("--workers", "2"),
            "no upstream is configured",
            id="no-upstream",
        ),
        pytest.param(
            "redis://127.0.0.1:6379/15?prefix=never-used:",
            "http://127.0.0.1:9",
            ("--workers", "0"),
            "--workers: must be an integer >= 1",
            id="zero",
        ),
    ],
)
async def test_workers_refuse_to_start_without_what_they_need(
    tmp_path: Path, store: str | None, upstream: str | None, args: tuple[str, ...], message: str
) -> None:
    values = {"GATEWAY_SERVER_PORT": str(free_port())}
    if store is not None:
        values["GATEWAY_STORE_URL"] = store
    if upstream is not None:
        values["GATEWAY_UPSTREAM_UPSTOX"] = upstream
    process = await start(
        clean_env(GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN, **values), "serve", *args, cwd=tmp_path
    )

    _, err = await asyncio.wait_for(process.communicate(), 15)

    assert process.returncode == 2, err.decode()
    assert message in err.decode()
    assert not os.listdir(tmp_path)  # nothing started: not even the SQLite file


@pytest.mark.redis
async def test_a_burst_of_forty_accounts_through_two_workers(
    two_workers: Served, paper: TestServer
) -> None:
    """40 accounts x 12 orders at once, each order on a fresh connection from the account's
    own registered address: exactly 10 forwarded and 2 refused per account, no 503."""
    gw = two_workers.url
    ips = [f"127.0.2.{n}" for n in range(1, 41)]
    clients = {
        ip: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(ip, 0), force_close=True)
        )
        for ip in ips
    }
    try:

        async def call(ip: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
            async with clients[ip].request(method, gw + path, **kw) as resp:
                return resp.status, await resp.json()

        bearers: dict[str, dict[str, str]] = {}
        for n, ip in enumerate(ips):
            user = f"B{n}"
            body = {"user_id": user, "name": "B"}
            assert (await call(ip, "POST", "/admin/v1/accounts", json=body, headers=ADMIN))[
                0
            ] == 201
            _, app = await call(ip, "POST", f"/admin/v1/accounts/{user}/apps", headers=ADMIN)
            _, login = await call(ip, "POST", "/gateway/v1/session", json=app)
            bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
            status, _ = await call(
                ip, "PUT", "/v2/user/ip", json={"primary_ip": ip}, headers=bearer
            )
            assert status == 200
            _, login = await call(ip, "POST", "/gateway/v1/session", json=app)
            bearers[ip] = {"Authorization": f"Bearer {login['data']['access_token']}"}

        async def order(ip: str, n: int) -> tuple[str, int, Any]:
            body = {**LIMIT_ORDER, "tag": f"{ip}-{n}"}
            status, answer = await call(
                ip, "POST", "/v2/order/place", json=body, headers=bearers[ip]
            )
            return ip, status, answer

        started = time.monotonic()
        results = await asyncio.gather(*(order(ip, n) for n in range(12) for ip in ips))
        took = time.monotonic() - started
    finally:
        for client in clients.values():
            await client.close()

    per_ip: dict[str, list[int]] = {}
    for ip, status, _ in results:
        per_ip.setdefault(ip, []).append(status)
    unexpected = [answer for _, status, answer in results if status not in (200, 429)]
    assert not unexpected, unexpected[:3]  # never "store unavailable"
    if took < 1.0:  # the whole burst inside one window: exactly the limit each
        bad = {ip: s for ip, s in per_ip.items() if sorted(s) != [200] * 10 + [429] * 2}
    else:  # a slow machine spread it over more windows: at least 10, at most 10 per window
        windows = int(took) + 1
        bad = {ip: s for ip, s in per_ip.items() if not 10 <= s.count(200) <= 10 * windows}
    assert not bad, (took, bad)
    async with (
        aiohttp.ClientSession() as client,
        client.get(paper.make_url("/paper/orders")) as resp,
    ):
        tags = [order["body"]["tag"] for order in (await resp.json())["orders"]]
    admitted = sum(status == 200 for _, status, _ in results)
    assert len(tags) == admitted
    assert len(set(tags)) == admitted  # nothing forwarded twice
