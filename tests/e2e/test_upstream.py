"""SPEC §10: the upstream hop — no retries, unknown outcomes, an allowlisted request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


@dataclass
class DroppingUpstream:
    """Answers the first request on a connection and keeps it alive; on the second request
    it reads the request and closes without answering, as a server restarting would."""

    requests: list[bytes] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            self.requests.append(head + body)
            served += 1
            if served == 1:
                answer = b'{"status":"success","data":{}}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
                continue
            writer.close()
            return

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def dropping() -> AsyncIterator[DroppingUpstream]:
    upstream = DroppingUpstream()
    yield upstream
    await upstream.stop()


@pytest.fixture
def custom_upstream(make_gateway: GatewayFactory) -> Callable[..., Awaitable[Harness]]:
    """A gateway whose every dialect goes to ``upstream`` instead of the paper broker."""

    async def start(upstream: str, **env: str) -> Harness:
        return await make_gateway(
            upstream_upstox=upstream, upstream_kotak=upstream, upstream_paradex=upstream, **env
        )

    return start


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def answering_upstream(
    custom_upstream: Callable[..., Awaitable[Harness]], aiohttp_server: Any
) -> Callable[..., Awaitable[Harness]]:
    """A gateway in front of a real aiohttp upstream whose every path is ``handler``."""

    async def start(handler: Handler, **env: str) -> Harness:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = await aiohttp_server(app)
        return await custom_upstream(str(server.make_url("")).rstrip("/"), **env)

    return start


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v2/order/modify", {"order_id": "1", "order_type": "LIMIT", "price": 1400}),
        ("DELETE", "/v2/order/cancel?order_id=1", None),
    ],
)
async def test_an_order_is_never_resent_when_a_kept_alive_connection_drops(
    custom_upstream: Callable[..., Awaitable[Harness]],
    dropping: DroppingUpstream,
    method: str,
    path: str,
    body: object,
) -> None:
    upstream = dropping
    gw: Harness = await custom_upstream(await upstream.start())
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})

    warm = await gw.request("GET", "/v2/user/profile", headers=trader.bearer)
    assert warm.status == 200  # the pooled connection is now kept alive
    reply = await gw.request(method, path, json=body, headers=trader.bearer)

    assert reply.status == 502
    assert reply.data["outcome"] == "unknown"
    assert len(upstream.requests) == 2  # one read, one order: aiohttp did not re-send it
    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=1")
    assert audit.data["data"][0]["outcome"] == "unknown"


async def test_connect_failure_is_503_and_nothing_was_sent(
    custom_upstream: Callable[..., Awaitable[Harness]],
) -> None:
    gw: Harness = await custom_upstream("http://127.0.0.1:9")
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, **LIMIT)
    assert reply.status == 503
    assert reply.data["outcome"] == "not_sent"


async def _answer_500(request: web.Request) -> web.Response:
    return web.json_response({"status": "error"}, status=500)


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def test_an_upstream_5xx_is_an_unknown_outcome_carrying_the_tag(
    answering_upstream: Callable[..., Awaitable[Harness]],
) -> None:
    gw: Harness = await answering_upstream(_answer_500)
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, tag="strat-7", **LIMIT)
    assert reply.status == 502
    assert reply.data["outcome"] == "unknown" and reply.data["tag"] == "strat-7"


async def test_an_upstream_timeout_is_504_unknown_outcome(
    answering_upstream: Callable[..., Awaitable[Harness]],
) -> None:
    gw: Harness = await answering_upstream(_hang, upstream_timeout_s="0.2")
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, tag="slow", **LIMIT)
    assert reply.status == 504
    assert reply.data["outcome"] == "unknown" and reply.data["tag"] == "slow"


async def _hang_if_slow(request: web.Request) -> web.Response:
    if b"slow" in await request.read():
        await asyncio.sleep(5)
    return web.json_response({"status": "success", "data": {"order_id": "1"}})


async def test_each_request_times_out_on_its_own_deadline(
    answering_upstream: Callable[..., Awaitable[Harness]],
) -> None:
    # One timer serves every request in flight: a fast answer in between must not move
    # it, and a later request must neither expire early nor be forgotten.
    gw: Harness = await answering_upstream(_hang_if_slow, upstream_timeout_s="0.3")
    trader = await gw.trader("127.0.0.2")
    loop = asyncio.get_running_loop()

    async def place(tag: str, after: float) -> tuple[int, float]:
        await asyncio.sleep(after)
        sent = loop.time()
        reply = await gw.place(trader, tag=tag, **LIMIT)
        return reply.status, loop.time() - sent

    (first, first_s), (fast, _), (second, second_s) = await asyncio.gather(
        place("slow-1", 0), place("fast", 0.1), place("slow-2", 0.15)
    )
    assert (first, fast, second) == (504, 200, 504)
    assert first_s >= 0.3 and second_s >= 0.3


async def test_the_upstream_request_is_built_from_an_allowlist(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    hostile = {
        **trader.bearer,
        "Host": "evil.example",
        "Connection": "close, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Proxy-Authorization": "Basic x",
        "X-Forwarded-For": "10.9.9.9",
        "Forwarded": "for=10.9.9.9",
        "X-HTTP-Method-Override": "DELETE",
        "X-Gateway-User-Id": "SOMEONE-ELSE",
        "X-Algo-Id": "00000",
        "Cookie": "a=b",
        "Api-Version": "2.0",
    }
    await gw.request(
        "POST",
        "/v2/order/place",
        json={**json.loads(json.dumps(LIMIT)), **_order()},
        headers=hostile,
    )
    [order] = await gw.upstream_orders()
    headers = order["headers"]
    for name in (
        "authorization",
        "x-secret-hop",
        "proxy-authorization",
        "x-forwarded-for",
        "forwarded",
        "x-http-method-override",
        "cookie",
    ):
        assert name not in headers
    assert headers["host"] != "evil.example"
    assert headers["x-gateway-user-id"] == trader.user_id
    assert headers["x-algo-id"] == "99999"
    assert headers["api-version"] == "2.0"


def _order() -> dict[str, object]:
    from ..harness import market_order

    return market_order(**LIMIT)


async def test_idempotency_key_replays_without_a_second_upstream_call(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    headers = {**trader.bearer, "Idempotency-Key": "k-1"}
    first = await gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    again = await gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    assert first.status == again.status == 200
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await gw.upstream_orders()) == 1
    other = await gw.request(
        "POST", "/v2/order/place", json={**_order(), "quantity": 2}, headers=headers
    )
    assert other.status == 422
    assert len(await gw.upstream_orders()) == 1


async def test_a_repeat_while_the_first_is_in_flight_gets_409(
    answering_upstream: Callable[..., Awaitable[Harness]],
) -> None:
    gate = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response({"status": "success", "data": {"order_id": "1"}})

    gw: Harness = await answering_upstream(slow)
    trader = await gw.trader("127.0.0.2")
    headers = {**trader.bearer, "Idempotency-Key": "k-2"}
    first = asyncio.create_task(
        gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    )
    await asyncio.sleep(0.05)
    second = await gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    gate.set()
    assert second.status == 409
    assert (await first).status == 200


async def test_a_rate_limited_request_releases_its_idempotency_key(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    for _ in range(10):
        assert (await gw.place(trader, **LIMIT)).status == 200
    headers = {**trader.bearer, "Idempotency-Key": "k-3"}
    assert (
        await gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    ).status == 429
    gw.clock.advance(1)
    assert (
        await gw.request("POST", "/v2/order/place", json=_order(), headers=headers)
    ).status == 200


async def test_trusted_proxy_forwarded_client_ip(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(server_trusted_proxies="127.0.0.5/32")
    trader = await gw.trader("127.0.0.2")
    via_proxy = await gw.request(
        "POST",
        "/v2/order/place",
        ip="127.0.0.5",
        json=_order(),
        headers={**trader.bearer, "X-Forwarded-For": "127.0.0.2"},
    )
    assert via_proxy.status == 200
    no_header = await gw.request(
        "POST", "/v2/order/place", ip="127.0.0.5", json=_order(), headers=trader.bearer
    )
    assert no_header.status == 400
    spoofed = await gw.request(
        "POST",
        "/v2/order/place",
        ip="127.0.0.6",
        json=_order(),
        headers={**trader.bearer, "X-Forwarded-For": "127.0.0.2"},
    )
    assert spoofed.status == 403
    assert len(await gw.upstream_orders()) == 1


async def test_ipv6_loopback_clients_are_seen_as_ipv6(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway()
    account = await gw.account()
    # the test server listens on 127.0.0.1 only, so IPv6 is exercised by registration and
    # by the Forwarded header from a trusted proxy
    gw2 = await make_gateway(server_trusted_proxies="127.0.0.5/32")
    account = await gw2.account()
    login = await gw2.login(account, ip="127.0.0.2")
    assert (await gw2.set_ips(login, "::1")).status == 200
    via = {"Forwarded": 'for="[::1]:5555"'}
    fresh = await gw2.request(
        "POST",
        "/gateway/v1/session",
        ip="127.0.0.5",
        headers=via,
        json={"api_key": account.api_key, "api_secret": account.api_secret},
    )
    assert fresh.data["data"]["created_ip"] == "::1" and fresh.data["data"]["slot"] == "primary"
    token = {"Authorization": f"Bearer {fresh.data['data']['access_token']}", **via}
    reply = await gw2.request(
        "POST", "/v2/order/place", ip="127.0.0.5", json=_order(), headers=token
    )
    assert reply.status == 200
    del gw
