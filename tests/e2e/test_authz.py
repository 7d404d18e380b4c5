"""Issue 17: nobody acts on another account, and nobody learns what it may not act on.

One table: every route the app's router has (the gateway's API, the admin sub-app, each
dialect's order routes) and, for the catch-all, every row of each dialect's route table (its
reads and public prefixes, a wrong method on each order path, an unknown write under each
order prefix, and one read of any other path), asked with each kind of credential; the answer
is the status in the table, and a refusal reaches nothing upstream.  The first test fails when
the router has a route the table lacks, so a new route comes with its row.

The account acted on is A: registered at 127.0.0.2, with an order placed in each dialect, a
family member M2, API tokens and an analytics token.  "other" is a fresh account with its own
registered IP and session; "member" a fresh member of A's family logged in from A's IP (it
leaves after its case).  Last, the id the gateway checks is the one the upstream can see
(issue 17, finding 4): an order id given twice in any form is refused, never forwarded.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from aiohttp.web import Application, PrefixedSubAppResource

from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.config import Config, load_config
from gateway.dialects import create_dialects
from gateway.paper.app import create_paper_app

from ..harness import ADMIN_TOKEN, Harness, Login, form, kotak_market
from .test_paradex import order as paradex_order

UP = "forwarded"  # admitted and forwarded: exactly this request reached the upstream
Answer = int | str

KINDS = (
    "none",  # no credential
    "garbage",  # a random token (kotak: random Auth and Sid)
    "revoked",  # A's session, logged out
    "other",  # another account's live session, from its own registered IP
    "member",  # a member of A's family, logged in from A's IP
    "token_in",  # A's API token, from inside its allowed_cidrs
    "token_out",  # A's API token, from outside them
    "analytics",  # A's analytics token
    "admin",  # the admin token, sent where a gateway credential goes
)
DEAD = ("none", "garbage", "revoked", "admin")  # no live gateway credential: 401 everywhere


def expect(live: Answer, **kinds: Answer) -> dict[str, Answer]:
    """401 for every dead credential, ``live`` for the others unless a kind is named."""
    table = {kind: (401 if kind in DEAD else live) for kind in KINDS}
    table.update(kinds)
    return table


def everyone(answer: Answer) -> dict[str, Answer]:
    return dict.fromkeys(KINDS, answer)


def admin_only(answer: Answer) -> dict[str, Answer]:
    return {**everyone(401), "admin": answer}


# By dialect: which credentials it accepts (kotak: sessions only; paradex: no analytics token).
def dialect_row(dialect: str, live: Answer, *, analytics: Answer = 403) -> dict[str, Answer]:
    if dialect == "kotak":
        return expect(live, token_in=401, token_out=401, analytics=401)
    return expect(live, token_out=403, analytics=401 if dialect == "paradex" else analytics)


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # {placeholders} filled from the world
    body: Any
    answers: dict[str, Answer]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


KOTAK_MODIFY = {"no": "{order_k}", "pt": "L", "pr": "1400", "qt": "1", "am": "NO", "vd": "DAY"}
UPSTOX_MODIFY = {"order_id": "{order_u}", "order_type": "LIMIT", "price": 1400, "quantity": 1}
UPSTOX_MODIFY |= {"validity": "DAY"}
PARADEX_MODIFY = paradex_order(type="LIMIT", price="100", id="{order_p}")
BAD = {"authz": "probe"}  # a body no route accepts: 400 once admitted
GTT = {
    "type": "SINGLE",
    "quantity": 1,
    "product": "D",
    "instrument_token": "NSE_EQ|INE002A01018",
    "transaction_type": "BUY",
    "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": 1450}],
}


def order_probe(method: str, path: str, body: Any, dialect: str, live: Answer) -> Probe:
    return Probe(method, path, body, dialect_row(dialect, live))


def foreign(method: str, path: str, body: Any, dialect: str) -> Probe:
    """A route naming A's order: others are refused with 403 (SPEC §6), A's token passes."""
    row = dialect_row(dialect, 403)
    if dialect != "kotak":
        row["token_in"] = UP
    return Probe(method, path, body, row)


ORDER_ROUTES: dict[tuple[str, str], list[Probe]] = {
    ("POST", "/quick/order/rule/ms/place"): [
        order_probe("POST", "/quick/order/rule/ms/place", BAD, "kotak", 400)
    ],
    ("POST", "/quick/order/vr/modify"): [
        foreign("POST", "/quick/order/vr/modify", KOTAK_MODIFY, "kotak")
    ],
    **{
        ("POST", path): [foreign("POST", path, {"on": "{order_k}", "am": "NO"}, "kotak")]
        for path in ("/quick/order/cancel", "/quick/order/co/exit", "/quick/order/bo/exit")
    },
    **{
        ("POST", path): [order_probe("POST", path, BAD, "paradex", 400)]
        for path in ("/v1/orders", "/v1/orders/batch", "/v1/algo/orders")
    },
    # block trades are JSON objects the gateway does not read: admitted, they are forwarded
    **{
        ("POST", template): [order_probe("POST", path, BAD, "paradex", UP)]
        for template, path in (
            ("/v1/block-trades", "/v1/block-trades"),
            ("/v1/block-trades/{block_trade_id}/execute", "/v1/block-trades/bt1/execute"),
            ("/v1/block-trades/{block_trade_id}/offers", "/v1/block-trades/bt1/offers"),
            (
                "/v1/block-trades/{block_trade_id}/offers/{offer_id}/execute",
                "/v1/block-trades/bt1/offers/of1/execute",
            ),
        )
    },
    ("DELETE", "/v1/orders/{id}"): [foreign("DELETE", "/v1/orders/{order_p}", None, "paradex")],
    ("PUT", "/v1/orders/{id}"): [foreign("PUT", "/v1/orders/{order_p}", PARADEX_MODIFY, "paradex")],
    ("DELETE", "/v1/orders/batch"): [
        foreign("DELETE", "/v1/orders/batch", {"order_ids": ["{order_p}"]}, "paradex")
    ],
    ("DELETE", "/v1/algo/orders/{id}"): [
        foreign("DELETE", "/v1/algo/orders/{order_p}", None, "paradex")
    ],
    # cancel-all and cancel by client id name no order the gateway checks: the upstream
    # cancels within the account it is told (X-Gateway-User-Id)
    ("DELETE", "/v1/orders"): [order_probe("DELETE", "/v1/orders?market=", None, "paradex", 400)],
    ("DELETE", "/v1/orders/by_client_id/{client_id}"): [
        order_probe("DELETE", "/v1/orders/by_client_id/c1", BAD, "paradex", 400)
    ],
    ("DELETE", "/v1/block-trades/{block_trade_id}"): [
        order_probe("DELETE", "/v1/block-trades/bt1", BAD, "paradex", 400)
    ],
    ("DELETE", "/v1/block-trades/{block_trade_id}/offers/{offer_id}"): [
        order_probe("DELETE", "/v1/block-trades/bt1/offers/of1", BAD, "paradex", 400)
    ],
    **{
        ("POST", path): [order_probe("POST", path, BAD, "upstox", 400)]
        for path in ("/v2/order/place", "/v3/order/place", "/v2/order/multi/place")
    },
    # an exit and a GTT placement carry objects the gateway only screens (SPEC §2): forwarded
    **{
        (method, path): [order_probe(method, path, BAD, "upstox", UP)]
        for method, path in (
            ("POST", "/v2/order/positions/exit"),
            ("POST", "/v3/order/gtt/place"),
        )
    },
    # a GTT modify or cancel names A's GTT id, recorded when A placed it
    ("PUT", "/v3/order/gtt/modify"): [
        foreign("PUT", "/v3/order/gtt/modify", {**GTT, "gtt_order_id": "{gtt_u}"}, "upstox")
    ],
    ("DELETE", "/v3/order/gtt/cancel"): [
        foreign("DELETE", "/v3/order/gtt/cancel", {"gtt_order_id": "{gtt_u}"}, "upstox")
    ],
    **{
        ("PUT", path): [foreign("PUT", path, UPSTOX_MODIFY, "upstox")]
        for path in ("/v2/order/modify", "/v3/order/modify")
    },
    **{
        ("DELETE", path): [foreign("DELETE", path + "?order_id={order_u}", None, "upstox")]
        for path in ("/v2/order/cancel", "/v3/order/cancel")
    },
    ("DELETE", "/v2/order/multi/cancel"): [
        order_probe("DELETE", "/v2/order/multi/cancel?authz=1", None, "upstox", 400)
    ],
}

SESSION_ONLY = expect(200, token_in=403, token_out=403, analytics=403)
LOGIN_ONLY_404 = expect(404, token_in=403, token_out=403, analytics=403)
READ = expect(200, token_out=403)
BAD_LOGIN = {"api_key": "nope", "api_secret": "nope"}

GATEWAY_ROUTES: dict[tuple[str, str], list[Probe]] = {
    ("GET", "/healthz"): [Probe("GET", "/healthz", None, everyone(200))],
    ("GET", "/readyz"): [Probe("GET", "/readyz", None, everyone(200))],
    ("GET", "/metrics"): [Probe("GET", "/metrics", None, everyone(200))],
    ("POST", "/gateway/v1/session"): [
        Probe("POST", "/gateway/v1/session", BAD_LOGIN, everyone(401))
    ],
    ("DELETE", "/gateway/v1/session"): [Probe("DELETE", "/gateway/v1/session", None, SESSION_ONLY)],
    ("POST", "/v2/login/authorization/token"): [
        Probe("POST", "/v2/login/authorization/token", "form", everyone(401))
    ],
    ("DELETE", "/v2/logout"): [Probe("DELETE", "/v2/logout", None, SESSION_ONLY)],
    ("GET", "/v2/user/ip"): [Probe("GET", "/v2/user/ip", None, READ)],
    ("PUT", "/v2/user/ip"): [
        Probe(
            "PUT",
            "/v2/user/ip",
            {},
            expect(400, member=403, token_in=403, token_out=403, analytics=403),
        )
    ],
    ("POST", "/gateway/v1/analytics-token"): [
        Probe(
            "POST",
            "/gateway/v1/analytics-token",
            None,
            expect(200, token_in=403, token_out=403, analytics=403),
        )
    ],
    ("DELETE", "/gateway/v1/analytics-token"): [
        Probe("DELETE", "/gateway/v1/analytics-token", None, LOGIN_ONLY_404)
    ],
    ("GET", "/v1/account/tokens"): [Probe("GET", "/v1/account/tokens", None, READ)],
    ("POST", "/v1/account/tokens"): [
        Probe(
            "POST",
            "/v1/account/tokens",
            {},
            expect(200, token_in=403, token_out=403, analytics=403),
        )
    ],
    ("DELETE", "/v1/account/tokens/{lookup_id}"): [
        Probe("DELETE", "/v1/account/tokens/{lookup}", None, LOGIN_ONLY_404)
    ],
    ("PUT", "/v1/account/tokens/{lookup_id}/allowed-cidrs"): [
        Probe(
            "PUT",
            "/v1/account/tokens/{lookup}/allowed-cidrs",
            {"allowed_cidrs": []},
            LOGIN_ONLY_404,
        )
    ],
    ("*", "/v1/account/tokens{tail}"): [
        Probe("PATCH", "/v1/account/tokens/{lookup}", {}, expect(404, token_out=403, analytics=403))
    ],
    ("POST", "/gateway/v1/apps"): [
        Probe(
            "POST",
            "/gateway/v1/apps",
            None,
            expect(201, token_in=403, token_out=403, analytics=403),
        )
    ],
    # the console's files are public; what it shows comes from the authenticated routes below
    ("GET", "/console"): [Probe("GET", "/console", None, everyone(200))],  # 308, followed
    ("GET", "/console/"): [Probe("GET", "/console/", None, everyone(200))],
    ("GET", "/console/{name}"): [Probe("GET", "/console/console.js", None, everyone(200))],
    ("GET", "/gateway/v1/sessions"): [Probe("GET", "/gateway/v1/sessions", None, READ)],
    ("DELETE", "/gateway/v1/sessions/{session_id}"): [
        Probe("DELETE", "/gateway/v1/sessions/" + "0" * 32, None, LOGIN_ONLY_404)
    ],
    ("GET", "/gateway/v1/ip-change"): [Probe("GET", "/gateway/v1/ip-change", None, READ)],
    ("GET", "/gateway/v1/decisions"): [Probe("GET", "/gateway/v1/decisions", None, READ)],
    # an audit id no account has: the same 404 for every live credential
    ("GET", "/gateway/v1/decisions/{audit_id}/explain"): [
        Probe(
            "GET",
            "/gateway/v1/decisions/" + "0" * 32 + "/explain",
            None,
            expect(404, token_out=403),
        )
    ],
    ("GET", "/gateway/v1/orders-per-second"): [
        Probe("GET", "/gateway/v1/orders-per-second", None, READ)
    ],
    ("GET", "/gateway/v1/family"): [Probe("GET", "/gateway/v1/family", None, READ)],
    ("POST", "/gateway/v1/family/members"): [
        Probe(
            "POST",
            "/gateway/v1/family/members",
            {"user_id": "NOBODY1"},
            expect(202, member=403, token_in=403, token_out=403, analytics=403),
        )
    ],
    ("DELETE", "/gateway/v1/family/members/{user_id}"): [
        Probe(
            "DELETE",
            "/gateway/v1/family/members/{member2}",
            None,
            expect(404, member=403, token_in=403, token_out=403, analytics=403),
        )
    ],
    ("GET", "/gateway/v1/family/invitations"): [
        Probe("GET", "/gateway/v1/family/invitations", None, READ)
    ],
    **{
        ("POST", f"/gateway/v1/family/invitations/{{parent_user_id}}/{verb}"): [
            Probe("POST", f"/gateway/v1/family/invitations/{{parent}}/{verb}", None, LOGIN_ONLY_404)
        ]
        for verb in ("accept", "decline")
    },
}

ADMIN_ROUTES: dict[tuple[str, str], list[Probe]] = {
    (method, "/admin/v1" + path): [
        Probe(
            method,
            "/admin/v1"
            + path.format(
                user_id="NOBODY",
                member_id="NOBODY2",
                session_id="0" * 32,
                dialect="upstox",
                audit_id="0" * 32,
            ),
            body,
            admin_only(answer),
        )
    ]
    for method, path, body, answer in (
        ("POST", "/accounts", {}, 400),
        ("GET", "/accounts", None, 200),
        ("PUT", "/accounts/{user_id}", {"algo_name": "probe"}, 404),
        ("PUT", "/accounts/{user_id}/egress", {"ip": None}, 404),
        ("PUT", "/accounts/{user_id}/broker-user-id", {"broker_user_id": "B1"}, 404),
        ("POST", "/accounts/{user_id}/apps", None, 404),
        ("DELETE", "/accounts/{user_id}/sessions", None, 404),
        ("GET", "/accounts/{user_id}/ip", None, 404),
        ("PUT", "/accounts/{user_id}/ip", {}, 404),
        ("PUT", "/accounts/{user_id}/upstream-auth/{dialect}", {}, 404),
        ("DELETE", "/accounts/{user_id}/upstream-auth/{dialect}", None, 404),
        ("GET", "/accounts/{user_id}/family", None, 404),
        ("POST", "/accounts/{user_id}/family/members", {}, 404),
        ("DELETE", "/accounts/{user_id}/family/members/{member_id}", None, 404),
        ("DELETE", "/sessions/{session_id}", None, 404),
        ("PUT", "/ltp", {}, 400),
        ("GET", "/audit", None, 200),
        ("GET", "/overview", None, 200),
        ("POST", "/explain", {}, 400),
        ("GET", "/audit/{audit_id}/explain", None, 404),
    )
}

# One read of any other path per dialect: forwarded with authentication only (SPEC §2).
OTHER_READS = {
    "upstox": "/v2/user/profile",
    "kotak": "/quick/user/orders",
    "paradex": "/v1/account",
}


def catch_all() -> list[Probe]:
    """The catch-all's rows, from each dialect's route table."""
    probes: list[Probe] = []
    for dialect in create_dialects().values():
        name, table = dialect.name, dialect.routes
        probes.append(Probe("GET", OTHER_READS[name], None, dialect_row(name, UP, analytics=UP)))
        probes += [Probe(m, p, "history", dialect_row(name, UP)) for m, p in _reads(table)]
        for method, prefix in table.public:
            answers = {**dialect_row(name, UP, analytics=UP), "none": UP}
            if name == "kotak":  # its public routes take the consumer key in Authorization
                answers["admin"] = UP
            probes.append(Probe(method, prefix.rstrip("/") + "/authz", None, answers))
        # paradex's reads share its order paths, so a wrong method there is an unknown write
        wrong = 404 if name == "paradex" else 405
        for path in sorted({route.template for route in table.routes}):
            path = path.replace("{", "").replace("}", "")  # any value fills a segment
            probes.append(Probe("PATCH", path, None, dialect_row(name, wrong)))
        for prefix in table.order_prefixes:
            probes.append(
                Probe("POST", prefix.rstrip("/") + "/authz/probe", BAD, dialect_row(name, 404))
            )
    unknown_api = expect(404, token_out=403)
    probes.append(Probe("GET", "/gateway/v1/authz", None, unknown_api))
    probes.append(Probe("PATCH", "/gateway/v1/family", None, {**unknown_api, "analytics": 403}))
    return probes


def _reads(table: Any) -> Iterator[tuple[str, str]]:
    for method, segments in table.reads:
        yield method, "/" + "/".join(segments)


TABLE: dict[tuple[str, str], list[Probe]] = {
    **ORDER_ROUTES,
    **GATEWAY_ROUTES,
    **ADMIN_ROUTES,
    ("*", "/{tail}"): catch_all(),
}
CASES = [
    pytest.param(probe, kind, id=f"{probe.id} as {kind}")
    for probes in TABLE.values()
    for probe in probes
    for kind in KINDS
]


def router_routes(app: Application) -> Iterator[tuple[str, str]]:
    for route in app.router.routes():
        if route.method != "HEAD" and route.resource is not None:
            yield route.method, route.resource.canonical
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource):
            yield from router_routes(resource._app)


def _config(db: Path) -> Config:
    return load_config(
        None, {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_STORE_URL": f"sqlite:///{db}"}
    )


def test_every_route_of_the_router_has_a_row(tmp_path: Path) -> None:
    found = set(router_routes(create_app(_config(tmp_path / "g.db"))))
    assert found - TABLE.keys() == set(), "routes without a row in the authorization table"
    assert TABLE.keys() - found == set(), "rows for routes the router no longer has"


@dataclass
class World:
    gw: Harness
    a: Login
    values: dict[str, str]  # the placeholders' values
    credentials: dict[str, tuple[str, str, str]]  # kind -> (token, session id, ip)
    ips: Iterator[int]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**self.values) if "{" in value else value
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    paper = TestServer(create_paper_app(move_interval_s=0, seed=7))
    await paper.start_server()
    base = str(paper.make_url("")).rstrip("/")
    db = tmp_path_factory.mktemp("authz") / "gateway.db"
    env = {
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_STORE_URL": f"sqlite:///{db}",
        "GATEWAY_UPSTREAM_UPSTOX": base,
        "GATEWAY_UPSTREAM_KOTAK": base,
        "GATEWAY_UPSTREAM_PARADEX": base,
    }
    clock = FakeClock()
    server = TestServer(create_app(load_config(None, env), clock=clock))
    await server.start_server()
    gw = Harness(server, paper, clock)
    try:
        yield await _populate(gw)
    finally:
        await gw.close()
        await server.close()
        await paper.close()


async def _populate(gw: Harness) -> World:
    a = await gw.trader("127.0.0.2")
    kotak = {"Auth": a.token, "Sid": a.session_id}
    placed_u = await gw.place(a, order_type="LIMIT", price=1400)
    placed_k = await gw.request(
        "POST",
        "/quick/order/rule/ms/place",
        data=form(kotak_market(pt="L", pr="1400")),
        headers={**kotak, "Content-Type": "application/x-www-form-urlencoded"},
    )
    placed_p = await gw.request(
        "POST", "/v1/orders", json=paradex_order(type="LIMIT", price="100"), headers=a.bearer
    )
    placed_gtt = await gw.request("POST", "/v3/order/gtt/place", json=GTT, headers=a.bearer)
    assert (placed_u.status, placed_k.status, placed_p.status) == (200, 200, 201)
    assert placed_gtt.status == 200, placed_gtt.body
    member2 = await gw.account()
    joined = await gw.admin(
        "POST", f"/accounts/{a.user_id}/family/members", {"user_id": member2.user_id}
    )
    assert joined.status == 201, joined.body
    tokens = {}
    for kind, cidrs in (("token_in", ["127.0.0.2/32"]), ("token_out", ["10.0.0.0/8"])):
        made = await gw.request(
            "POST", "/v1/account/tokens", json={"allowed_cidrs": cidrs}, headers=a.bearer
        )
        assert made.status == 200, made.body
        tokens[kind] = (made.data["token"], made.data["api_token"]["lookup_id"])
    analytics = await gw.request("POST", "/gateway/v1/analytics-token", headers=a.bearer)
    assert analytics.status == 200, analytics.body
    revoked = await gw.login(a)
    out = await gw.request("DELETE", "/gateway/v1/session", headers=revoked.bearer)
    assert out.status == 200, out.body
    values = {
        "order_u": str(placed_u.data["data"]["order_id"]),
        "gtt_u": str(placed_gtt.data["data"]["gtt_order_ids"][0]),
        "order_k": str(placed_k.data["nOrdNo"]),
        "order_p": str(placed_p.data["id"]),
        "lookup": tokens["token_in"][1],
        "parent": a.user_id,
        "member2": member2.user_id,
    }
    credentials = {
        "garbage": ("x" * 43, "y" * 32, "127.0.0.2"),
        "revoked": (revoked.token, revoked.session_id, "127.0.0.2"),
        "token_in": (tokens["token_in"][0], "", "127.0.0.2"),
        "token_out": (tokens["token_out"][0], "", "127.0.0.2"),
        "analytics": (analytics.data["data"]["access_token"], "", "127.0.0.2"),
        "admin": (ADMIN_TOKEN, "", "127.0.0.2"),
    }
    return World(gw, a, values, credentials, itertools.count(10))


async def _fresh(world: World, kind: str) -> tuple[str, str, str]:
    """A new session for each case, so one case's logout or token never changes another's."""
    gw = world.gw
    if kind == "other":
        ip = f"127.0.1.{next(world.ips)}"
        login = await gw.trader(ip)
        return login.token, login.session_id, ip
    member = await gw.account()
    joined = await gw.admin(
        "POST", f"/accounts/{world.a.user_id}/family/members", {"user_id": member.user_id}
    )
    assert joined.status == 201, joined.body
    login = await gw.login(member, "127.0.0.2")
    return login.token, login.session_id, "127.0.0.2"


async def _leave(world: World, kind: str) -> None:
    if kind != "member":
        return
    family = await world.gw.admin("GET", f"/accounts/{world.a.user_id}/family")
    for member in family.data["data"]["members"]:
        if member["user_id"] != world.values["member2"]:
            await world.gw.admin(
                "DELETE", f"/accounts/{world.a.user_id}/family/members/{member['user_id']}"
            )


def _headers(path: str, kind: str, credential: tuple[str, str, str] | None) -> dict[str, str]:
    if credential is None:
        return {}
    token, session_id, _ = credential
    if path.startswith(("/quick/", "/script-details/", "/market-data/")) and kind != "admin":
        return {"Auth": token, "Sid": session_id or "0" * 32}
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("probe", "kind"), CASES)
async def test_each_credential_gets_its_answer_and_refusals_reach_nothing_upstream(
    world: World, probe: Probe, kind: str
) -> None:
    gw = world.gw
    gw.clock.advance(1.1)  # a fresh rate window: the orders A's token sends are never 429
    if kind in ("other", "member"):
        credential: tuple[str, str, str] | None = await _fresh(world, kind)
    else:
        credential = world.credentials.get(kind)
    ip = credential[2] if credential else "127.0.0.2"
    path = world.fill(probe.path)
    headers = _headers(path, kind, credential)
    body = world.fill(probe.body)
    json: Any = None
    data: Any = None
    if body == "form":
        data = {"client_id": "nope", "client_secret": "nope"}
    elif body == "history":
        data, headers["Content-Type"] = form({}), "application/x-www-form-urlencoded"
    elif path.startswith("/quick/") and isinstance(body, dict):
        data, headers["Content-Type"] = form(body), "application/x-www-form-urlencoded"
    else:
        json = body
    before = len(await gw.upstream_requests())
    try:
        reply = await gw.request(probe.method, path, ip=ip, json=json, data=data, headers=headers)
    finally:
        await _leave(world, kind)
    sent = (await gw.upstream_requests())[before:]
    want = probe.answers[kind]
    if want == UP:
        assert [(r["method"], r["path"]) for r in sent] == [(probe.method, path.split("?")[0])]
    else:
        assert reply.status == want, reply.body
        assert sent == [], "a refused request reached the upstream"
    asked = f"{path} {body}"
    if kind == "other" and reply.status >= 400 and world.a.user_id not in asked:
        # a refusal never names the account acted on, unless the caller named it
        assert world.a.user_id.encode() not in reply.body


# The id checked is the id forwarded ------------------------------------------------------------


def _json(text: str) -> tuple[bytes, str]:
    return text.encode(), "application/json"


def _jdata(*fields: str) -> tuple[bytes, str]:
    return "&".join(fields).encode(), "application/x-www-form-urlencoded"


TWICE = [
    # paradex: the path names the order; a body naming another one is refused
    (
        "PUT",
        "/v1/orders/{order_p}",
        _json(
            '{"market":"BTC-USD-PERP","side":"BUY","type":"LIMIT",'
            '"size":"0.1","price":"100","id":"OTHER1"}'
        ),
        400,
    ),
    (
        "PUT",
        "/v1/orders/OTHER1",
        _json(
            '{"market":"BTC-USD-PERP","side":"BUY","type":"LIMIT",'
            '"size":"0.1","price":"100","id":"{order_p}"}'
        ),
        400,
    ),
    # one of A's orders among a batch of the caller's own is still A's
    ("DELETE", "/v1/orders/batch", _json('{"order_ids":["OWN1","{order_p}"]}'), 403),
    # a JSON key given twice: the parser the gateway checks with and the upstream's could
    # each read a different one
    (
        "PUT",
        "/v2/order/modify",
        _json(
            '{"order_id":"OWN1","order_type":"LIMIT","price":1400,'
            '"quantity":1,"validity":"DAY","order_id":"{order_u}"}'
        ),
        400,
    ),
    ("POST", "/quick/order/cancel", _jdata('jData={"on":"OWN1","am":"NO","on":"{order_k}"}'), 400),
    (
        "POST",
        "/quick/order/cancel",
        _jdata('jData={"on":"OWN1","am":"NO"}', 'jData={"on":"{order_k}","am":"NO"}'),
        400,
    ),
    ("DELETE", "/v2/order/cancel?order_id=OWN1&order_id={order_u}", (b"", ""), 400),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("method", "path", "sent", "status"), TWICE)
async def test_an_order_id_given_twice_is_refused_before_anything_goes_upstream(
    world: World, method: str, path: str, sent: tuple[bytes, str], status: int
) -> None:
    gw = world.gw
    gw.clock.advance(1.1)
    token, session_id, ip = await _fresh(world, "other")
    kotak = path.startswith("/quick/")
    headers = {"Auth": token, "Sid": session_id} if kotak else {"Authorization": f"Bearer {token}"}
    body, content_type = sent
    if content_type:
        headers["Content-Type"] = content_type
    raw = body.decode()
    for name, value in world.values.items():  # str.format would read the JSON's braces
        raw, path = raw.replace("{" + name + "}", value), path.replace("{" + name + "}", value)
    before = len(await gw.upstream_requests())
    reply = await gw.request(method, path, ip=ip, data=raw.encode(), headers=headers)
    assert reply.status == status, reply.body
    assert len(await gw.upstream_requests()) == before
    assert world.a.user_id.encode() not in reply.body


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("kind", "status"), [("none", 401), ("revoked", 401), ("other", 413)])
async def test_an_order_body_over_the_limit_is_told_only_to_an_admitted_session(
    world: World, kind: str, status: int
) -> None:
    gw = world.gw
    credential = await _fresh(world, kind) if kind == "other" else world.credentials.get(kind)
    ip = credential[2] if credential else "127.0.0.2"
    headers = _headers("/v2/order/place", kind, credential)
    big = b'{"tag":"' + b"x" * 70_000 + b'"}'  # over the default 64 KiB
    before = len(await gw.upstream_requests())
    reply = await gw.request(
        "POST",
        "/v2/order/place",
        ip=ip,
        data=big,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert reply.status == status, reply.body
    assert len(await gw.upstream_requests()) == before
