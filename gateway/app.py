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
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from rules.decisions import Reason, Refuse, Refused
from rules.routes import Match, Route, load_routes

from . import admin
from .api import analytics, family, session, tokens, userip
from .api.common import Handler, gateway_error, json_response
from .clock import Clock, SystemClock
from .config import Config
from .dialects.base import Dialect
from .dialects.kotak import KotakDialect
from .dialects.paradex import ParadexDialect
from .dialects.upstox import UpstoxDialect
from .edge import check_text
from .instruments import load_master, sample_master
from .ltp import LtpBook
from .metrics import Metrics
from .pipeline import Pipeline
from .services import SERVICES, Services
from .stores.base import Store, StoreUnavailable
from .upstream import Upstream

log = logging.getLogger("order_gateway")

PIPELINE = web.AppKey("pipeline", Pipeline)
PAPER_URL = web.AppKey("paper_url", str)

# Encoded dots, slashes, NUL and backslashes, and empty or dot segments (SPEC §10).
_UNSAFE_PATH = re.compile(r"%2e|%2f|%00|%5c|\\|//|(^|/)\.\.?(/|$)", re.IGNORECASE)


def create_store(config: Config) -> Store:
    url = config.store.url
    if url.startswith("sqlite:///"):
        from .stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    from .stores.redis import RedisStore

    return RedisStore.from_url(url)


def create_dialects() -> dict[str, Dialect]:
    dialects: dict[str, Dialect] = {"upstox": UpstoxDialect(load_routes("upstox"))}
    dialects["kotak"] = KotakDialect(load_routes("kotak"))
    dialects["paradex"] = ParadexDialect(load_routes("paradex"))
    return dialects


def _envelope_for(services: Services, path: str, refuse: Refuse) -> web.Response:
    dialect = services.dialect_for(path)
    return dialect.refusal(refuse) if dialect is not None else gateway_error(refuse)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse request targets that could route one way and forward another, before routing."""
    services = request.app[SERVICES]
    raw_path = request.raw_path.split("?", 1)[0]
    if not raw_path.startswith("/"):  # absolute-form (or asterisk-form) request target
        return _envelope_for(
            services,
            request.path,
            Refuse(Reason.BAD_REQUEST, "absolute-form request targets are refused"),
        )
    if _UNSAFE_PATH.search(raw_path):
        return _envelope_for(
            services,
            request.path,
            Refuse(
                Reason.BAD_REQUEST,
                "the path has encoded or relative segments; send the canonical path",
            ),
        )
    try:
        check_text(request)
    except Refused as refused:
        return _envelope_for(services, request.path, refused.refusal)
    response: web.StreamResponse = await handler(request)
    return response


def order_route(dialect: Dialect, route: Route) -> Handler:
    """The handler of one order route: the router matched it, its ``{name}`` segments included."""

    async def handle(request: web.Request) -> web.StreamResponse:
        match = Match(route, dict(request.match_info))
        return await request.app[PIPELINE].handle(request, dialect, match)

    return handle


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every other path: a dialect's read routes, or an order path with the wrong method."""
    services = request.app[SERVICES]
    dialect = services.dialect_for(request.path)
    if dialect is None:
        return gateway_error(Refuse(Reason.NOT_FOUND, f"no route {request.method} {request.path}"))
    # Matched again, so an order route the router and the route table ever disagree on is
    # still handled as an order route (checked, or refused), never forwarded as a read.
    match = dialect.match(request.method, request.path)
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
    for dialect in services.dialects:
        base = urlsplit(services.upstream.base(dialect))
        host, port = base.hostname or "", base.port or (443 if base.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            problems.append(f"upstream {dialect}: {exc or 'timeout'}")
    if problems:
        return json_response({"status": "unavailable", "problems": problems}, 503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.StreamResponse:
    body = request.app[SERVICES].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def _bases(config: Config, paper_url: str | None) -> dict[str, str]:
    u = config.upstream
    configured = {"upstox": u.upstox, "kotak": u.kotak, "paradex": u.paradex}
    fallback = paper_url or next((v for v in configured.values() if v), None)
    return {name: value or fallback or "" for name, value in configured.items()}


def create_app(
    config: Config, *, clock: Clock | None = None, paper_port: int = 0
) -> web.Application:
    clock = clock or SystemClock()
    instruments = (
        load_master(list(config.instruments.files)) if config.instruments.files else sample_master()
    )
    services = Services(
        config=config,
        clock=clock,
        store=create_store(config),
        upstream=Upstream(config.upstream, _bases(config, None)),
        instruments=instruments,
        ltp=LtpBook(clock.monotonic, max_age=config.rules.ltp_max_age_s),
        dialects=create_dialects(),
        metrics=Metrics(),
    )
    app = web.Application(middlewares=[guard], client_max_size=config.server.max_body_bytes)
    app[SERVICES] = services
    app[PIPELINE] = Pipeline(services)

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
            services.upstream = Upstream(config.upstream, _bases(config, url))
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
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/gateway/v1/session", session.create_session)
    app.router.add_delete("/gateway/v1/session", session.delete_session)
    app.router.add_post("/v2/login/authorization/token", session.upstox_token)
    app.router.add_get("/v2/user/ip", userip.get_ip)
    app.router.add_put("/v2/user/ip", userip.put_ip)
    analytics.add_routes(app.router)
    tokens.add_routes(app.router)  # before the catch-all: /v1/account/tokens is not paradex's
    family.add_routes(app.router)
    admin_app = admin.create_admin_app(services)
    app.add_subapp("/admin/v1", admin_app)
    # Order routes resolve through the router's index; every other path of a dialect falls
    # through to the catch-all (the pipeline owns method checks for both).
    for dialect in services.dialects.values():
        for route in dialect.routes.routes:
            app.router.add_route(route.method, route.template, order_route(dialect, route))
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
