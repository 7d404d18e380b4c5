"""The order pipeline between the rules tables and the e2e tests: its own app, a real SQLite
store, and a recording upstream on loopback standing in for the broker.

Each test builds the pipeline from named collaborators, so a store role can be swapped for
one that fails at a chosen step.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.common import new_credential
from gateway.app import PIPELINE, order_route
from gateway.clock import FakeClock
from gateway.config import RulesConfig, ServerConfig, UpstreamConfig
from gateway.dialects import create_dialects
from gateway.dialects.base import Dialect
from gateway.dialects.upstox import UpstoxDialect
from gateway.errors import Envelopes, error_boundary
from gateway.instruments import sample_master
from gateway.ltp import LtpBook
from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.services import token_hash
from gateway.stores.base import Account, StoreUnavailable
from gateway.stores.sqlite import SQLiteStore
from gateway.upstream import Upstream
from rules.registry import Registration
from rules.routes import Route, load_routes
from rules.types import CredentialKind

from ..harness import RELIANCE, market_order

PLACE = "/v2/order/place"
CLIENT_IP = ip_address("127.0.0.1")  # aiohttp_client connects from here


@dataclass
class Broker:
    """A recording upstream: every request it gets, and the answer it gives to orders."""

    status: int = 200
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def orders(self) -> list[dict[str, Any]]:
        """What reached an order route (an LTP quote fetched for a MARKET order is not one)."""
        return [seen for seen in self.seen if "/order/" in seen["path"]]

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        if request.path != PLACE:
            return web.json_response({"status": "error"}, status=404)  # no quotes: no LTP
        body = {"status": "success", "data": {"order_id": f"OID{len(self.seen)}"}}
        return web.json_response(body, status=self.status)


@dataclass
class World:
    client: TestClient[Any, Any]
    broker: Broker
    pipeline: Pipeline
    metrics: Metrics
    store: SQLiteStore
    clock: FakeClock
    token: str

    async def place(self, headers: dict[str, str] | None = None, **order: Any) -> Any:
        return await self.client.post(
            PLACE,
            json=market_order(**order),
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        )

    def counted(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


Build = Callable[..., Awaitable[World]]


async def _account(store: SQLiteStore, clock: FakeClock, primary: str) -> str:
    """An account registered on ``primary`` and a login session from the client's IP."""
    now = clock.now()
    await store.create_account(Account(user_id="U1", name="One", created_at=now))
    registration = Registration(
        primary=ip_address(primary), primary_updated_at=now, changed_at=now, version=1
    )
    await store.apply_ip_change("U1", registration, expected_version=0)
    token, credential = new_credential(
        user_id="U1",
        kind=CredentialKind.LOGIN,
        created_ip=CLIENT_IP,
        created_at=now,
        expires_at=now + timedelta(hours=6),
        slot=registration.slot_of(CLIENT_IP),
    )
    await store.create_credential(credential, token_hash(token))
    return token


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def build(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> AsyncIterator[Build]:
    cleanup: list[Callable[[], Awaitable[None]]] = []

    async def factory(
        *,
        primary: str = "127.0.0.1",
        rules: RulesConfig | None = None,
        wrap: Callable[[SQLiteStore], Any] = lambda store: store,
        unreachable: bool = False,
        ltp: Decimal | None = Decimal("100"),
        upstox: Dialect | None = None,
    ) -> World:
        clock = FakeClock()
        store = SQLiteStore(str(tmp_path / "gateway.db"))
        await store.start()
        cleanup.append(store.close)
        token = await _account(store, clock, primary)
        broker = Broker()
        broker_app = web.Application()
        broker_app.router.add_route("*", "/{tail:.*}", broker.handle)
        server = await aiohttp_server(broker_app)
        base = f"http://127.0.0.1:{_closed_port()}" if unreachable else str(server.make_url(""))
        upstream = Upstream(UpstreamConfig(), {"upstox": base.rstrip("/")})
        await upstream.start()
        cleanup.append(upstream.close)
        instruments = sample_master()
        book = LtpBook(clock.monotonic, max_age=2.0)
        if ltp is not None:
            book.push(RELIANCE, ltp)
        metrics = Metrics()
        roles = wrap(store)
        pipeline = Pipeline(
            rules=rules or RulesConfig(),
            server=ServerConfig(),
            shared_secret="",
            clock=clock,
            credentials=roles,
            admission=roles,
            orders=roles,
            idempotency=roles,
            audit_log=roles,
            upstream=upstream,
            instruments=instruments,
            ltp=book,
            metrics=metrics,
        )
        dialects = create_dialects()
        boundary = error_boundary(Envelopes(dialects), metrics, max_body_bytes=65536)
        app = web.Application(middlewares=[boundary])
        app[PIPELINE] = pipeline
        upstox = dialects["upstox"] = upstox or dialects["upstox"]
        for route in upstox.routes.routes:
            app.router.add_route(route.method, route.template, order_route(upstox, route))
        client = await aiohttp_client(app)
        return World(client, broker, pipeline, metrics, store, clock, token)

    yield factory
    for close in reversed(cleanup):
        await close()


async def test_an_admitted_order_is_forwarded_once_rewritten_with_the_algo_id(
    build: Build,
) -> None:
    world = await build()
    resp = await world.place(tag="t1")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["order_id"] == "OID1"
    (sent,) = world.broker.seen
    order = json.loads(sent["body"])
    assert order["order_type"] == "LIMIT"
    assert Decimal(str(order["price"])) == Decimal(resp.headers["X-Gateway-Limit-Price"])
    assert Decimal(str(order["price"])) > Decimal("100")  # a BUY is protected above the LTP
    assert sent["headers"]["X-Algo-Id"] == RulesConfig().algo_id
    assert sent["headers"]["X-Gateway-User-Id"] == "U1"
    assert resp.headers["X-Gateway-Order-Type"] == "LIMIT"
    known = await world.store.known_order("OID1")
    assert known is not None and known.user_id == "U1"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad_token", 401),
        ("ip_not_registered", 403),
        ("bad_body", 400),
        ("no_ltp", 422),
        ("unknown_modify", 422),
    ],
)
async def test_each_admission_refusal_forwards_nothing_and_takes_no_rate_slot(
    build: Build, case: str, status: int
) -> None:
    world = await build(
        primary="127.0.0.9" if case == "ip_not_registered" else "127.0.0.1",
        ltp=None if case == "no_ltp" else Decimal("100"),
        rules=RulesConfig(orders_per_second=1),
    )
    auth = {"Authorization": f"Bearer {world.token}"}
    for _ in range(3):
        if case == "bad_token":
            resp = await world.place(headers={"Authorization": "Bearer nope"})
        elif case == "bad_body":
            resp = await world.client.post(PLACE, data=b"{not json", headers=auth)
        elif case == "unknown_modify":
            body = {"order_id": "NOT-OURS", "order_type": "MARKET", "quantity": 1, "price": 0}
            body |= {"validity": "DAY", "trigger_price": 0, "disclosed_quantity": 0}
            resp = await world.client.put("/v2/order/modify", json=body, headers=auth)
        else:
            resp = await world.place()
        assert resp.status == status, await resp.text()
    assert world.broker.orders == []
    refusals = world.counted(
        "gateway_decisions_total",
        dialect="upstox",
        route_class="modify" if case == "unknown_modify" else "place",
        decision="refused",
        reason=_reason(case),
    )
    assert refusals == 3.0  # each one decided and recorded, none forwarded
    if case in ("ip_not_registered", "no_ltp"):
        return  # no order of this account can pass; the limit is proved on the others
    # The one slot of this second is still free: three refusals took none.
    world.pipeline.ltp.push(RELIANCE, Decimal("100"))
    resp = await world.place()
    assert resp.status == 200 and len(world.broker.orders) == 1
    resp = await world.place()
    assert resp.status == 429 and len(world.broker.orders) == 1


def _reason(case: str) -> str:
    return {
        "bad_token": "invalid_token",
        "ip_not_registered": "ip_not_registered",
        "bad_body": "bad_request",
        "no_ltp": "ltp_unavailable",
        "unknown_modify": "unknown_order",
    }[case]


async def test_an_idempotent_replay_does_not_reach_the_upstream(build: Build) -> None:
    world = await build()
    key = {"Idempotency-Key": "k-1"}
    first = await world.place(headers=key)
    second = await world.place(headers=key)
    assert first.status == second.status == 200
    assert await first.read() == await second.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(world.broker.seen) == 1


async def test_an_upstream_5xx_is_a_502_whose_outcome_is_unknown(build: Build) -> None:
    world = await build()
    world.broker.status = 500
    resp = await world.place(tag="mine")
    body = await resp.json()
    assert resp.status == 502
    assert body["outcome"] == "unknown" and body["tag"] == "mine"
    assert body["errors"][0]["error_code"] == "UDAPI9502"
    assert len(world.broker.seen) == 1


async def test_a_connect_failure_is_a_503_not_sent(build: Build) -> None:
    world = await build(unreachable=True)
    resp = await world.place(tag="mine")
    body = await resp.json()
    assert resp.status == 503
    assert body["outcome"] == "not_sent" and body["tag"] == "mine"
    assert body["errors"][0]["error_code"] == "UDAPI95031"


async def test_an_unavailable_store_before_sending_is_a_503_nothing_sent(build: Build) -> None:
    world = await build(wrap=lambda store: Failing(store, {"admit"}))
    resp = await world.place()
    body = await resp.json()
    assert resp.status == 503 and body["errors"][0]["error_code"] == "UDAPI9503"
    assert "nothing was sent" in body["errors"][0]["message"]
    assert world.broker.seen == []


class Failing:
    """The real store, except that the named writes raise StoreUnavailable."""

    def __init__(self, store: SQLiteStore, failing: set[str]) -> None:
        self._store = store
        self._failing = failing

    def __getattr__(self, name: str) -> Any:
        if name not in self._failing:
            return getattr(self._store, name)
        if name == "audit":

            def audit(*args: Any) -> None:
                raise StoreUnavailable("audit buffer unavailable")

            return audit

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable(f"{name}: the store went away")

        return failing


@pytest.mark.parametrize(
    "what", ["remember_order", "finish_idempotent", "audit"], ids=lambda w: str(w)
)
async def test_bookkeeping_after_the_upstream_answered_is_best_effort(
    build: Build, what: str
) -> None:
    world = await build(wrap=lambda store: Failing(store, {what}))
    resp = await world.place(headers={"Idempotency-Key": "k-2"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["order_id"] == "OID1"
    assert len(world.broker.seen) == 1
    label = {"finish_idempotent": "idempotency"}.get(what, what)
    assert world.counted("gateway_bookkeeping_failures_total", what=label) == 1.0


class UnreadableIds(UpstoxDialect):
    """Upstox, except that no answer's order ids can be read."""

    def order_ids(self, route: Route, body: bytes) -> list[str]:
        raise ValueError("an answer shaped unlike any upstox sends")


async def test_an_answer_whose_order_ids_cannot_be_read_still_reaches_the_client(
    build: Build,
) -> None:
    world = await build(upstox=UnreadableIds(load_routes("upstox")))
    resp = await world.place()
    assert resp.status == 200 and (await resp.json())["data"]["order_id"] == "OID1"
    assert world.counted("gateway_bookkeeping_failures_total", what="order_ids") == 1.0
    assert await world.store.known_order("OID1") is None
