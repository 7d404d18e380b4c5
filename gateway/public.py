"""Public routes (SPEC §2): what a broker serves without a session, forwarded with no account.

A public route is data, a ``[[public]]`` row of the dialect's route table.  It is forwarded
without a gateway credential; a credential the client sends anyway is checked as usual (live,
an API token's allowlist, the analytics token's scope), so a revoked token is never quietly
accepted.  Upstream, no account is attached: no ``X-Gateway-User-Id``, no stored broker
credential, only the dialect's allowlisted headers and its public ones (kotak's consumer key
in ``Authorization``, as the official client sends it).  Nothing here can reach an order:
the route table refuses to load a public prefix that covers an order route or prefix.
"""

from __future__ import annotations

from aiohttp import web

from rules.analytics import default_table
from rules.sessions import check_live
from rules.tokens import check_scope

from .dialects.base import Dialect
from .edge import identify, read_body, request_client_ip
from .services import Services
from .upstream import response_headers


async def forward_public(
    services: Services, request: web.Request, dialect: Dialect
) -> web.StreamResponse:
    client_ip = request_client_ip(request, services)
    if dialect.presents_credential(request.headers):
        snapshot = await identify(services.store, dialect.token(request.headers), dialect)
        check_scope(
            check_live(snapshot.credential, now=services.clock.now()),
            method=request.method,
            path=request.path,
            client_ip=client_ip,
            registered=snapshot.registration.ips,
            table=default_table(),
        )
    body = await read_body(request, services.config.server.max_body_bytes)
    payload, content_type = dialect.reencode_other(body, request.content_type)
    passed = dialect.forwarded_headers | dialect.public_headers
    headers = {k: v for k, v in request.headers.items() if k.lower() in passed}
    if content_type:
        headers["Content-Type"] = content_type
    # the canonical target the guard checked, bytes as sent; errors go to the boundary
    upstream = await services.upstream.send(
        dialect.name, request.method, request.raw_path, headers, payload
    )
    return web.Response(
        status=upstream.status, body=upstream.body, headers=response_headers(upstream.headers)
    )
