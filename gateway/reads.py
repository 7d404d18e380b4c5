"""Every path of a dialect that is not an order route (SPEC §2): authenticated, scoped (an API
token's CIDRs, the analytics token's categories) and forwarded as sent, from the account's
egress address; no IP rule, no rate limit.
"""

from __future__ import annotations

from aiohttp import web

from rules.analytics import default_table
from rules.sessions import check_live
from rules.tokens import check_scope

from .audit import Trace
from .collaborators import Collaborators
from .dialects.base import Dialect
from .edge import client_ip, identify, read_body
from .stores.base import Snapshot
from .upstream import response_headers


class Reads(Collaborators):
    async def authenticate(self, request: web.Request, dialect: Dialect) -> Snapshot:
        """A live credential of this dialect, allowed this method and path from this IP (an
        API token's CIDRs, the analytics token's scope), else Refused: 401 for a missing,
        unknown or dead token alike, then 403."""
        ip = client_ip(request, self.server.trusted_proxies)
        snapshot = await identify(self.credentials, dialect.token(request.headers), dialect)
        credential = check_live(snapshot.credential, now=self.clock.now())
        check_scope(
            credential,
            method=request.method,
            path=request.path,
            client_ip=ip,
            registered=snapshot.registration.ips,
            table=default_table(),
        )
        return snapshot

    async def _other(
        self, request: web.Request, dialect: Dialect, trace: Trace
    ) -> web.StreamResponse:
        snapshot = await self.authenticate(request, dialect)
        trace.user_id = snapshot.account.user_id
        body = await read_body(request, self.server.max_body_bytes)
        payload, content_type = dialect.reencode_other(body, request.content_type)
        path_qs = request.raw_path  # the canonical target the guard checked, bytes as sent
        headers = self._upstream_headers(request, dialect, snapshot, path_qs, payload)
        if content_type:
            headers["Content-Type"] = content_type
        # an UpstreamError is the boundary's to render: a read has no outcome to report
        upstream = await self.upstream.send(
            dialect.name, request.method, path_qs, headers, payload, **self._via(snapshot, dialect)
        )
        trace.decision = "forwarded"
        trace.upstream_latency_ms = round(upstream.latency_s * 1000, 3)
        return web.Response(
            status=upstream.status, body=upstream.body, headers=response_headers(upstream.headers)
        )
