from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.paper.app import create_paper_app

from .gateway.stores.conftest import delete_prefix, redis_url, unique_prefix
from .harness import ADMIN_TOKEN, Harness

GatewayFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def paper(aiohttp_server: Any) -> TestServer:
    server: TestServer = await aiohttp_server(create_paper_app(move_interval_s=0, seed=7))
    return server


@pytest.fixture
async def make_gateway(
    aiohttp_server: Any, paper: TestServer, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[GatewayFactory]:
    """Start a gateway; keyword arguments are GATEWAY_<SECTION>_<KEY> overrides."""
    harnesses: list[Harness] = []

    async def factory(**env: str) -> Harness:
        base = str(paper.make_url("")).rstrip("/")
        values = {
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_STORE_URL": f"sqlite:///{tmp_path}/gateway-{len(harnesses)}.db",
            "GATEWAY_UPSTREAM_UPSTOX": base,
            "GATEWAY_UPSTREAM_KOTAK": base,
            "GATEWAY_UPSTREAM_PARADEX": base,
        }
        values.update({f"GATEWAY_{k.upper()}": v for k, v in env.items()})
        server: TestServer = await aiohttp_server(
            create_app(load_config(None, values), clock=clock)
        )
        harness = Harness(server, paper, clock)
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        await harness.close()


@pytest.fixture
async def redis_store_url() -> AsyncIterator[str]:
    """A Redis store URL under a key prefix of the test's own, deleted at teardown.

    Request it before ``make_gateway`` (``def pair(redis_store_url, make_gateway)``): fixtures
    are torn down in reverse, so the gateways close (and flush their audit buffers) first and
    the prefix is deleted after them, leaving nothing behind.
    """
    prefix = unique_prefix()
    yield redis_url(prefix)
    await delete_prefix(prefix)


@pytest.fixture
async def gw(make_gateway: GatewayFactory) -> Harness:
    return await make_gateway()
