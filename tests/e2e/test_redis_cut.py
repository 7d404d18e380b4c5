"""Redis cut while an order is at the upstream (SPEC §11, issue 12).

The gateway talks to Redis through a TCP relay on loopback that the test can make drop every
connection (a Redis restart, a severed link) or stall them (a partition: bytes go nowhere and
nothing says so). The upstream is a real aiohttp server that, holding the order, cuts the relay
and only then answers. Once the order's first byte went upstream, the store failing must never
turn the answer into 503 "nothing was sent": the client gets the upstream's answer (what the
gateway could not record is logged and counted), the order reached the upstream exactly once,
and after the relay heals orders go through again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from ..conftest import GatewayFactory
from ..gateway.stores.conftest import delete_prefix, unique_prefix
from ..harness import Harness, Login, Reply, market_order

pytestmark = pytest.mark.redis

REDIS = ("127.0.0.1", 6379)
LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


class Relay:
    """A TCP relay to Redis that passes bytes, drops every connection, or stalls them."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.dropping = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def drop(self) -> None:
        """Close every connection now and every new one as it arrives, until ``heal``."""
        self.dropping = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def stall(self) -> None:
        """Hold every byte in both directions (new connections are accepted and held too)."""
        self._flowing.clear()

    def heal(self) -> None:
        self.dropping = False
        self._flowing.set()

    async def close(self) -> None:
        self.drop()
        self.heal()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.dropping:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*REDIS)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self._tasks.discard)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for end in (writer, up_writer):
            end.transport.abort()
            self._writers.discard(end)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                if self.dropping or writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()


class Upstream:
    """An upstream that records every order and, while holding one, runs ``on_order``."""

    def __init__(self) -> None:
        self.orders: list[str] = []  # the tag of every order that arrived
        self.on_order: Callable[[], None] = lambda: None
        self.order_id = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.orders.append((await request.json())["tag"])
        self.on_order()
        await asyncio.sleep(0.05)  # the cut lands while the order is still being answered
        self.order_id += 1
        return web.json_response(
            {"status": "success", "data": {"order_id": f"2611{self.order_id:08d}"}}
        )


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    relay = Relay()
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def cut_store_url(relay: Relay) -> AsyncIterator[str]:
    """DB 15 under a prefix of the test's own, through the relay; deleted directly after."""
    prefix = unique_prefix()
    yield f"redis://127.0.0.1:{relay.port}/15?prefix={prefix}"
    await delete_prefix(prefix)


@pytest.fixture
async def setup(
    cut_store_url: str, relay: Relay, make_gateway: GatewayFactory, aiohttp_server: Any
) -> AsyncIterator[tuple[Harness, Upstream, Login]]:
    upstream = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    gw = await make_gateway(
        store_url=cut_store_url, upstream_upstox=url, upstream_kotak=url, upstream_paradex=url
    )
    trader = await gw.trader("127.0.0.2")
    yield gw, upstream, trader
    relay.heal()  # the gateway's close flushes its audit buffer through the relay


async def _bookkeeping_failures(gw: Harness) -> float:
    reply = await gw.request("GET", "/metrics", ip="127.0.0.1")
    total = 0.0
    for line in reply.body.decode().splitlines():
        if line.startswith("gateway_bookkeeping_failures_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _place_keyed(gw: Harness, trader: Login, tag: str, key: str) -> Reply:
    headers = {**trader.bearer, "Idempotency-Key": key}
    order = market_order(tag=tag, **LIMIT)
    return await gw.request("POST", "/v2/order/place", ip=trader.ip, json=order, headers=headers)


@pytest.mark.parametrize("cut", ["drop", "stall"])
async def test_a_redis_cut_while_the_order_is_upstream_keeps_the_upstream_answer(
    setup: tuple[Harness, Upstream, Login], relay: Relay, cut: str
) -> None:
    gw, upstream, trader = setup
    assert (await gw.place(trader, tag="before", **LIMIT)).status == 200
    failures_before = await _bookkeeping_failures(gw)
    upstream.on_order = relay.drop if cut == "drop" else relay.stall

    reply = await _place_keyed(gw, trader, "cut", "cut-1")

    # The upstream's answer stands; at worst the outcome is unknown, never "not sent".
    assert reply.status in (200, 502, 504), reply.body
    assert reply.data.get("outcome") != "not_sent", reply.body
    assert reply.status == 200, reply.body
    assert reply.data["data"]["order_id"] == f"2611{upstream.order_id:08d}"
    assert upstream.orders.count("cut") == 1  # exactly once: nothing retried it upstream
    relay.heal()
    # What the store could not record (the idempotency record, the known order) was counted.
    assert await _bookkeeping_failures(gw) > failures_before

    upstream.on_order = lambda: None
    after = await gw.place(trader, tag="after", **LIMIT)
    assert after.status == 200, after.body
    assert upstream.orders == ["before", "cut", "after"]


async def test_while_redis_is_cut_orders_fail_closed_and_nothing_goes_upstream(
    setup: tuple[Harness, Upstream, Login], relay: Relay
) -> None:
    gw, upstream, trader = setup
    assert (await gw.place(trader, tag="before", **LIMIT)).status == 200
    relay.drop()

    refused = await gw.place(trader, tag="during", **LIMIT)

    assert refused.status == 503, refused.body
    assert upstream.orders == ["before"]
    relay.heal()
    after = await gw.place(trader, tag="after", **LIMIT)
    assert after.status == 200, after.body
    assert upstream.orders == ["before", "after"]
