"""``create_app(config)``: the gateway as one aiohttp application.

Routes: the gateway's own API (sessions, ``/v2/user/ip``), the admin sub-app, health and
metrics, and one catch-all that hands every other path to the dialect that owns its prefix.
Resources (store, upstream client, the embedded paper broker) live in ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from rules.decisions import Reason, Refuse, Refused
from rules.routes import Access, Match, Route

from . import admin, console, http_guard
from .accesslog import access_middleware, note_route
from .api import analytics, apps, family, relay, session, tokens, userip
from .api import console as console_api
from .api.common import authenticated, json_response
from .clock import Clock, SystemClock
from .config import Config
from .dialects import create_dialects
from .dialects.base import Dialect
from .edge import check_text
from .errors import Envelopes, Handler, error_boundary
from .explain import EXPLAINER, Explainer
from .instrument_refresh import REFRESHER, InstrumentRefresher
from .instruments import InstrumentMaster, load_master, sample_master
from .ltp import LtpBook
from .metrics import Metrics
from .pipeline import Pipeline
from .public import forward_public
from .services import SERVICES, Services
from .stores.base import Store, StoreUnavailable
from .upstream import Upstream

log = logging.getLogger("order_gateway")

PIPELINE = web.AppKey("pipeline", Pipeline)
ENVELOPES = web.AppKey("envelopes", Envelopes)
METRICS = web.AppKey("metrics", Metrics)
PAPER_URL = web.AppKey("paper_url", str)

# The gateway's own API (sessions, families, apps, tokens): its unknown paths are refused
# after authentication, as every dialect's are.
GATEWAY_API = "/gateway/"

# Encoded dots, slashes, NUL and backslashes, and empty or dot segments (SPEC §10).
_UNSAFE_PATH = re.compile(r"%2e|%2f|%00|%5c|\\|//|(^|/)\.\.?(/|$)", re.IGNORECASE)


def create_store(config: Config) -> Store:
    url = config.store.url
    if url.startswith("sqlite:///"):
        from .stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    from .stores.redis import RedisStore

    return RedisStore.from_url(url)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse request targets that could route one way and forward another, before routing."""
    http_guard.check_head(request, request.app[SERVICES].config.server.max_header_bytes)
    raw_path = request.raw_path.split("?", 1)[0]
    if not raw_path.startswith("/"):  # absolute-form (or asterisk-form) request target
        raise Refused(Reason.BAD_REQUEST, "absolute-form request targets are refused")
    if _UNSAFE_PATH.search(raw_path):
        raise Refused(
            Reason.BAD_REQUEST,
            "the path has encoded or relative segments; send the canonical path",
        )
    check_text(request)
    response: web.StreamResponse = await handler(request)
    return response


def _expect_handler(app: web.Application, dialect: Dialect) -> Any:
    """Admission before ``100 Continue`` on this dialect's order routes (SPEC §12)."""

    async def admit(request: web.Request) -> None:
        await app[PIPELINE].admit_before_body(request, dialect)

    def render(request: web.Request, refuse: Refuse) -> web.StreamResponse:
        return dialect.refusal(refuse)

    return http_guard.expect_handler(admit, render, app[SERVICES].config.server.max_header_bytes)


def order_route(dialect: Dialect, route: Route) -> Handler:
    """The handler of one order route: the router matched it, its ``{name}`` segments included."""

    async def handle(request: web.Request) -> web.StreamResponse:
        match = Match(route, dict(request.match_info))
        return await request.app[PIPELINE].handle(request, dialect, match)

    return handle


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every other path: a dialect's read and public routes, or a refused write."""
    services = request.app[SERVICES]
    method, path = request.method, request.path
    dialect = request.app[ENVELOPES].owner(path)
    if dialect is None:
        if path.startswith(GATEWAY_API):  # the gateway's own API answers only a live credential
            await authenticated(request)
        raise Refused(Reason.NOT_FOUND, f"no route {method} {path}")
    # Matched again, so an order route the router and the route table ever disagree on is
    # still handled as an order route (checked, or refused), never forwarded as a read.
    match = dialect.match(method, path)
    if match is None:
        access = dialect.routes.access(method, path)
        if access is Access.PUBLIC:
            note_route(request, dialect.name, "public")
            return await forward_public(services, request, dialect)
        # An order path with another method is the pipeline's 405 (after authentication);
        # any other write under an order prefix is no route at all: 404, never forwarded,
        # and said only to a live credential (issue 17: authenticate before anything answers).
        if access is Access.CLOSED and not dialect.is_order_path(path):
            await request.app[PIPELINE].authenticate(request, dialect)
            raise Refused(
                Reason.NOT_FOUND,
                f"{method} {path} is not an order route the gateway knows; writes under an"
                " order prefix are refused, never forwarded",
            )
    return await request.app[PIPELINE].handle(request, dialect, match)


async def healthz(request: web.Request) -> web.StreamResponse:
    # the pid tells an operator which worker of `serve --workers N` answered
    return json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    problems: list[str] = []
    try:
        await services.store.ping()
    except StoreUnavailable as exc:
        problems.append(f"store: {exc}")
    for name, base_url in services.upstream.bases().items():  # named hosts too (SPEC §14)
        base = urlsplit(base_url)
        host, port = base.hostname or "", base.port or (443 if base.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            problems.append(f"upstream {name}: {exc or 'timeout'}")
    problems += request.app[REFRESHER].problems()  # SPEC §14: a failed or stale master
    if problems:
        return json_response({"status": "unavailable", "problems": problems}, 503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.StreamResponse:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def upstream_bases(
    configured: Mapping[str, str | None], dialects: Collection[str], paper_url: str | None
) -> dict[str, str]:
    """Each registered dialect's upstream base URL; a dialect with no upstream key, or a key
    naming no registered dialect, is a startup error.  An unset URL falls back to the
    embedded paper broker, or else to the first configured one."""
    unknown = sorted(set(configured) - set(dialects))
    missing = sorted(set(dialects) - set(configured))
    if unknown or missing:
        raise ValueError(
            "upstream keys and registered dialects differ:"
            + "".join(f" upstream.{name} names no dialect;" for name in unknown)
            + "".join(f" dialect {name} has no upstream.{name};" for name in missing)
        )
    fallback = paper_url or next((v for v in configured.values() if v), None)
    return {name: configured[name] or fallback or "" for name in dialects}


def create_app(
    config: Config, *, clock: Clock | None = None, paper_port: int = 0
) -> web.Application:
    clock = clock or SystemClock()
    instruments = (
        load_master(list(config.instruments.files)) if config.instruments.files else sample_master()
    )
    if config.instruments.urls:  # refreshed in place (SPEC §14): never the cached shared sample
        instruments = InstrumentMaster(instruments)
    dialects = create_dialects()
    services = Services(
        config=config,
        clock=clock,
        store=create_store(config),
        upstream=Upstream(
            config.upstream,
            upstream_bases(config.upstream.urls, dialects, None) | config.upstream.hosts,
        ),
        instruments=instruments,
        ltp=LtpBook(clock.monotonic, max_age=config.rules.ltp_max_age_s),
        dialects=dialects,
        metrics=Metrics(),
    )
    store = services.store
    pipeline = Pipeline(
        rules=config.rules,
        server=config.server,
        shared_secret=config.upstream.shared_secret,
        clock=clock,
        credentials=store,
        admission=store,
        orders=store,
        idempotency=store,
        audit_log=store,
        upstream=services.upstream,
        instruments=instruments,
        ltp=services.ltp,
        metrics=services.metrics,
    )
    envelopes = Envelopes(services.dialects)
    boundary = error_boundary(
        envelopes,
        services.metrics,
        max_body_bytes=config.server.max_body_bytes,
    )
    # The boundary is outermost but for the request log: the guard's refusals, every
    # handler's and the admin sub-app's (its auth check included) become answers there and
    # nowhere else, and the log sees the answer the client got.
    middlewares = [boundary, guard]
    if config.log.access:
        access = access_middleware(
            trusted_proxies=config.server.trusted_proxies, fmt=config.log.format
        )
        middlewares.insert(0, access)
    app = web.Application(middlewares=middlewares, client_max_size=config.server.max_body_bytes)
    app[SERVICES] = services
    app[PIPELINE] = pipeline
    app[ENVELOPES] = envelopes
    app[EXPLAINER] = Explainer(pipeline, envelopes)
    app[METRICS] = services.metrics

    async def resources(app: web.Application) -> AsyncIterator[None]:
        paper_runner: web.AppRunner | None = None
        if config.upstream.embedded:
            from .paper.app import create_paper_app

            paper_runner = web.AppRunner(create_paper_app(instruments=instruments), access_log=None)
            await paper_runner.setup()
            site = web.TCPSite(paper_runner, "127.0.0.1", paper_port)
            await site.start()
            port = paper_runner.addresses[0][1]
            url = f"http://127.0.0.1:{port}"
            app[PAPER_URL] = url
            services.upstream = pipeline.upstream = Upstream(
                config.upstream,
                upstream_bases(config.upstream.urls, dialects, url) | config.upstream.hosts,
            )
            log.info("embedded paper broker on %s (GET %s/paper/orders)", url, url)
        await services.store.start()
        await services.upstream.start()
        try:
            yield
        finally:
            await services.upstream.close()
            await services.store.close()
            if paper_runner is not None:
                await paper_runner.cleanup()

    app.cleanup_ctx.append(resources)
    app[REFRESHER] = InstrumentRefresher(instruments, config, clock, services.metrics)
    app.cleanup_ctx.append(app[REFRESHER].context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/gateway/v1/session", session.create_session)
    app.router.add_delete("/gateway/v1/session", session.delete_session)
    relay.add_routes(app)  # the upstox token route: the gateway's login, or relayed (SPEC §14)
    app.router.add_delete("/v2/logout", session.upstox_logout)
    app.router.add_get("/v2/user/ip", userip.get_ip)
    app.router.add_put("/v2/user/ip", userip.put_ip)
    analytics.add_routes(app.router)
    tokens.add_routes(app.router)  # before the catch-all: /v1/account/tokens is not paradex's
    family.add_routes(app.router)
    apps.add_routes(app.router)
    console.add_routes(app.router)
    console_api.add_routes(app.router)
    admin_app = admin.create_admin_app(services)
    console_api.add_admin_routes(admin_app.router)
    app.add_subapp("/admin/v1", admin_app)
    # Order routes resolve through the router's index; every other path of a dialect falls
    # through to the catch-all (the pipeline owns method checks for both).
    for dialect in services.dialects.values():
        expect = _expect_handler(app, dialect)
        for route in dialect.routes.routes:
            app.router.add_route(
                route.method, route.template, order_route(dialect, route), expect_handler=expect
            )
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
