"""One request's walk through the gateway: decode → identify → decide → rewrite → forward.

Order routes (SPEC §5): the credential must be live, the client IP registered, the session
created from that IP and holding its order slot; then each order is resolved against the
orders this gateway placed, MARKET/SL-M orders are priced by the protection grid (SPEC §6),
an Idempotency-Key is claimed, a rate-limit slot is taken (SPEC §7) and only then does the
first byte go upstream.  The rate-limit slot is taken last so that refused requests never
count against the limit.

Every other path of a dialect is forwarded with authentication only.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from rules.analytics import default_table
from rules.decisions import Reason, Refuse, Refused
from rules.orders import (
    KnownOrder,
    MarketPolicy,
    convert,
    needs_conversion,
    needs_ltp,
    resolve_for_account,
)
from rules.routes import Match, Route
from rules.sessions import admit_order, check_live
from rules.tokens import check_scope
from rules.types import Action, CredentialKind, IPAddress

from . import audit, idempotency
from .audit import Trace
from .dialects.base import Decoded, Dialect, Token
from .edge import identify, read_body, request_client_ip
from .forwarding import upstream_headers
from .services import Services
from .stores.base import IdempotencyRecord, Snapshot, StaleSnapshot, StoreUnavailable
from .upstream import UpstreamError, UpstreamResponse, response_headers

_MAX_STALE_RETRIES = 3

log = logging.getLogger("order_gateway")


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def handle(
        self, request: web.Request, dialect: Dialect, match: Match | None
    ) -> web.StreamResponse:
        """``match``: the order route the request matched, None for any other path."""
        started = time.perf_counter()
        trace = Trace(
            dialect.name,
            request.method,
            request.path,
            route_class=match.route.action.value if match else "order",
        )
        try:
            client_ip = request_client_ip(request, self.s)
            trace.client_ip = str(client_ip)
            token = dialect.token(request.headers)
            if match is None and dialect.is_order_path(request.path):
                snapshot = await identify(self.s, token, dialect)
                if snapshot.credential.kind is CredentialKind.ANALYTICS:
                    raise Refused(
                        Reason.READ_ONLY_TOKEN,
                        "the analytics token is read-only and never reaches an order route",
                    )
                raise Refused(
                    Reason.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.path}"
                )
            if match is None:
                return await self._other(request, dialect, client_ip, token)
            return await self._order(request, dialect, match, client_ip, token, trace, started)
        except Refused as refused:
            return await self._refuse(dialect, refused.refusal, trace, started, match is not None)
        except StoreUnavailable as exc:
            log.warning(
                "%s %s refused, the store did not answer: %s", request.method, request.path, exc
            )
            refusal = Refuse(
                Reason.STORE_UNAVAILABLE, "the gateway's store is unavailable; nothing was sent"
            )
            return await self._refuse(dialect, refusal, trace, started, match is not None)

    # order routes ---------------------------------------------------------------------------

    async def _order(
        self,
        request: web.Request,
        dialect: Dialect,
        match: Match,
        client_ip: IPAddress,
        token: Token,
        trace: Trace,
        started: float,
    ) -> web.StreamResponse:
        s = self.s
        route = match.route
        rules = s.config.rules
        body = await read_body(request, s.config.server.max_body_bytes)
        for _ in range(_MAX_STALE_RETRIES):
            snapshot = await identify(s, token, dialect, verify=False)
            trace.user_id = snapshot.account.user_id
            trace.session_id = snapshot.credential.session_id
            self._admit(snapshot, client_ip)
            decoded = dialect.decode_request(match, body, request.raw_path)
            trace.original = [dict(doc.fields) for doc in decoded.docs]
            await self._rewrite(dialect, decoded, snapshot, token)
            trace.rewritten = [dict(doc.fields) for doc in decoded.docs]
            idem = await idempotency.claim(s, request, snapshot, body)
            if isinstance(idem, web.Response):
                trace.decision, trace.reason = "replayed", "idempotent_replay"
                return idem
            try:
                retry_after = await self._take_rate_slot(snapshot)
            except StaleSnapshot:
                await idempotency.release(s, idem)
                continue
            except BaseException:
                await idempotency.release(s, idem)
                raise
            if retry_after is not None:
                await idempotency.release(s, idem)
                s.metrics.child(s.metrics.rate_limited, dialect.name).inc()
                raise Refused(
                    Reason.RATE_LIMITED,
                    f"more than {rules.orders_per_second} orders in one second; retry after"
                    f" {retry_after:.3f} s",
                    retry_after=retry_after,
                )
            return await self._forward_order(
                request, dialect, route, decoded, snapshot, trace, started, idem
            )
        raise Refused(Reason.STORE_UNAVAILABLE, "the account changed repeatedly; try again")

    def _admit(self, snapshot: Snapshot, client_ip: IPAddress) -> None:
        """SPEC §5 steps 1-4: live, registered IP, session from it, holding its slot."""
        slot = snapshot.registration.slot_of(client_ip)
        admit_order(
            snapshot.credential,
            now=self.s.clock.now(),
            client_ip=client_ip,
            registration=snapshot.registration,
            slot_holder=None if slot is None else snapshot.slot_holders.get(slot),
        )

    async def admit_before_body(self, request: web.Request, dialect: Dialect) -> None:
        """The checks that need no body, for ``Expect: 100-continue`` (SPEC §12): raises
        Refused (or StoreUnavailable) before the client is told to send the body."""
        try:
            client_ip = request_client_ip(request, self.s)
            snapshot = await identify(self.s, dialect.token(request.headers), dialect)
        except StoreUnavailable as exc:
            raise Refused(
                Reason.STORE_UNAVAILABLE, "the gateway's store is unavailable; nothing was sent"
            ) from exc
        self._admit(snapshot, client_ip)

    async def _rewrite(
        self, dialect: Dialect, decoded: Decoded, snapshot: Snapshot, token: Token
    ) -> None:
        s = self.s
        rules = s.config.rules
        user_id = snapshot.account.user_id
        for doc in decoded.docs:
            intent = doc.intent
            if intent.order_id is not None and intent.action is not Action.PLACE:
                known = await s.store.known_order(intent.order_id)
                intent = resolve_for_account(intent, known, user_id=user_id)
                doc.intent = intent
            if not needs_conversion(intent):
                continue
            instrument = s.instruments.get(intent.instrument_key or "")
            if not dialect.applies_grid(rules, known_instrument=instrument is not None):
                continue
            ltp: Decimal | None = None
            age: float | None = None
            if (
                instrument is not None
                and needs_ltp(intent)
                and rules.market_orders is MarketPolicy.CONVERT
            ):
                seen = s.ltp.cached(instrument.key) or await s.ltp.fresh(
                    instrument, lambda i: self._fetch_ltp(dialect, i, token)
                )
                if seen is not None:
                    ltp, age = seen
            conversion = convert(
                intent,
                instrument=instrument,
                ltp=ltp,
                ltp_age=age,
                max_age=rules.ltp_max_age_s,
                grid=rules.grid,
                policy=rules.market_orders,
            )
            if conversion is not None:
                dialect.apply(doc, conversion)
                s.metrics.child(s.metrics.conversions, dialect.name).inc()

    async def _fetch_ltp(self, dialect: Dialect, instrument: Any, token: Token) -> Decimal | None:
        # Proved current first (admit has not run yet): a quote fetched on the order's behalf
        # carries the account's identity or upstream credential as it is now.
        snapshot = await identify(self.s, token, dialect)
        path = dialect.ltp_path(instrument)
        headers = upstream_headers(
            self.s,
            snapshot,
            dialect.name,
            "GET",
            path.split("?", 1)[0],
            {"Accept": "application/json"},
        )
        resp = await self.s.upstream.send(dialect.name, "GET", path, headers, None)
        return dialect.parse_ltp(instrument, resp.body) if resp.status == 200 else None

    async def _take_rate_slot(self, snapshot: Snapshot) -> float | None:
        s = self.s
        rules = s.config.rules
        deadline = s.clock.monotonic() + rules.queue_max_wait_ms / 1000
        while True:
            # wall time, not monotonic: with a shared store every instance's windows must agree
            retry_after = await s.store.admit(
                snapshot, now=s.clock.now().timestamp(), limit=rules.orders_per_second
            )
            if retry_after is None or rules.rate_limit_mode != "queue":
                return retry_after
            if s.clock.monotonic() + retry_after > deadline:
                return retry_after
            await s.clock.sleep(retry_after)

    def _upstream_headers(
        self, request: web.Request, dialect: Dialect, snapshot: Snapshot
    ) -> dict[str, str]:
        """The dialect's allowlisted client headers plus the account's identity (SPEC §10)."""
        allowed = dialect.forwarded_headers
        base = {name: value for name, value in request.headers.items() if name.lower() in allowed}
        return upstream_headers(self.s, snapshot, dialect.name, request.method, request.path, base)

    async def _forward_order(
        self,
        request: web.Request,
        dialect: Dialect,
        route: Route,
        decoded: Decoded,
        snapshot: Snapshot,
        trace: Trace,
        started: float,
        idem: IdempotencyRecord | None,
    ) -> web.StreamResponse:
        s = self.s
        rules = s.config.rules
        body, content_type = dialect.encode(decoded)
        headers = self._upstream_headers(request, dialect, snapshot)
        headers.update(
            dialect.algo_headers(snapshot.account.algo_id or rules.algo_id, rules.algo_name)
        )
        if content_type:
            headers["Content-Type"] = content_type
        path_qs = decoded.target  # the routed path and the rebuilt query (SPEC §10)
        trace.decision = "admitted"
        overhead = time.perf_counter() - started
        try:
            upstream = await s.upstream.send(
                dialect.name, request.method, path_qs, headers, body or None
            )
        except UpstreamError as exc:
            trace.outcome = "unknown" if exc.outcome_unknown else "not_sent"
            trace.reason = exc.reason.value
            extra: dict[str, Any] = {"outcome": trace.outcome}
            tags = [d.intent.tag for d in decoded.docs if d.intent.tag]
            if tags:
                extra["tag"] = tags[0] if len(tags) == 1 else tags
            response = dialect.refusal(Refuse(exc.reason, str(exc)), extra)
        else:
            trace.upstream_status = upstream.status
            trace.upstream_latency_ms = round(upstream.latency_s * 1000, 3)
            s.metrics.child(s.metrics.upstream_latency, dialect.name).observe(upstream.latency_s)
            response = await self._order_response(
                dialect, route, decoded, snapshot, upstream, trace
            )
        trace.status = response.status
        s.metrics.child(s.metrics.overhead, dialect.name).observe(overhead)
        if idem is not None:
            await idempotency.finish(s, idem, response)
        audit.record(self.s, trace, decoded, "admitted")
        return response

    async def _order_response(
        self,
        dialect: Dialect,
        route: Route,
        decoded: Decoded,
        snapshot: Snapshot,
        upstream: UpstreamResponse,
        trace: Trace,
    ) -> web.Response:
        if upstream.status >= 500:
            trace.outcome = "unknown"
            tags = [d.intent.tag for d in decoded.docs if d.intent.tag]
            extra: dict[str, Any] = {"outcome": "unknown", "upstream_status": upstream.status}
            if tags:
                extra["tag"] = tags[0] if len(tags) == 1 else tags
            return dialect.refusal(
                Refuse(
                    Reason.UPSTREAM_FAILED,
                    f"the upstream answered {upstream.status}; the order's outcome is unknown",
                ),
                extra,
            )
        trace.outcome = "ok" if upstream.status < 400 else "rejected_upstream"
        headers = response_headers(upstream.headers)
        converted = [d.conversion for d in decoded.docs if d.conversion is not None]
        if converted:
            headers["X-Gateway-Order-Type"] = ", ".join(c.order_type.value for c in converted)
            headers["X-Gateway-Limit-Price"] = ", ".join(str(c.limit_price) for c in converted)
            # An SL-M is priced from its trigger, not an LTP: "-" in its place, and no header
            # at all when no converted order used an LTP.
            if any(c.ltp is not None for c in converted):
                headers["X-Gateway-LTP"] = ", ".join(
                    "-" if c.ltp is None else str(c.ltp) for c in converted
                )
        if upstream.status < 300 and route.action is Action.PLACE and decoded.docs:
            ids = dialect.order_ids(route, upstream.body)
            trace.order_ids = ids
            for doc, order_id in zip(decoded.docs, ids, strict=False):
                intent = doc.intent
                if intent.instrument_key and intent.side:
                    await self.s.store.remember_order(
                        KnownOrder(
                            order_id, snapshot.account.user_id, intent.instrument_key, intent.side
                        )
                    )
        return web.Response(status=upstream.status, body=upstream.body, headers=headers)

    # other routes ---------------------------------------------------------------------------

    async def _other(
        self, request: web.Request, dialect: Dialect, client_ip: IPAddress, token: Token
    ) -> web.StreamResponse:
        s = self.s
        snapshot = await identify(s, token, dialect)
        credential = check_live(snapshot.credential, now=s.clock.now())
        check_scope(
            credential,
            method=request.method,
            path=request.path,
            client_ip=client_ip,
            registered=snapshot.registration.ips,
            table=default_table(),
        )
        body = await read_body(request, s.config.server.max_body_bytes)
        payload, content_type = dialect.reencode_other(body, request.content_type)
        headers = self._upstream_headers(request, dialect, snapshot)
        if content_type:
            headers["Content-Type"] = content_type
        path_qs = request.raw_path  # the canonical target the guard checked, bytes as sent
        try:
            upstream = await s.upstream.send(
                dialect.name, request.method, path_qs, headers, payload
            )
        except UpstreamError as exc:
            return dialect.refusal(Refuse(exc.reason, str(exc)))
        return web.Response(
            status=upstream.status, body=upstream.body, headers=response_headers(upstream.headers)
        )

    # refusals and the record ----------------------------------------------------------------

    async def _refuse(
        self, dialect: Dialect, refusal: Refuse, trace: Trace, started: float, is_order: bool
    ) -> web.Response:
        trace.reason = refusal.reason.value
        trace.message = refusal.message
        trace.status = refusal.status
        if is_order:
            audit.record(self.s, trace, None, "refused")
        return dialect.refusal(refusal)
