"""One request's walk through the gateway: decode → identify → decide → rewrite → forward.

Order routes (SPEC §5): the credential must be live, the client IP registered, the session
created from that IP and holding its order slot; then each order is resolved against the
orders this gateway placed, MARKET/SL-M orders are priced by the protection grid (SPEC §6),
an Idempotency-Key is claimed, one rate-limit slot per order the request carries is taken
(SPEC §7: a multi-order counts its orders, all at once or none) and only then does the first
byte go upstream.  The slots are taken last so that refused requests never count against the
limit.

Every other path of a dialect is forwarded with authentication only.

The pipeline names what it uses (the rules and server config, the clock, five store roles,
the upstream, instruments, LTPs, metrics) and only raises: the error boundary
(``gateway/errors.py``) renders every refusal.  Once an order's first byte went upstream,
its bookkeeping (the order book, the idempotency record, the audit log) is best effort.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from aiohttp import web

from rules.decisions import Reason, Refuse, Refused
from rules.orders import (
    KnownOrder,
    orders_carried,
)
from rules.routes import Match, Route
from rules.sessions import admit_order
from rules.types import Action, CredentialKind, IPAddress

from . import audit, idempotency
from .accesslog import ACCESS
from .answers import order_answer, outcome
from .audit import REPLAYED_HEADERS, Trace
from .dialects.base import Decoded, Dialect, Token
from .edge import client_ip, identify, identify_hash, read_body
from .errors import SENT, STORE_UNAVAILABLE
from .idempotency import Claim
from .pricing import Pricing
from .reads import Reads
from .services import token_hash
from .stores.base import Snapshot, StaleSnapshot, StoreUnavailable
from .upstream import UpstreamError, UpstreamResponse

log = logging.getLogger("order_gateway")

_MAX_STALE_RETRIES = 3


class Pipeline(Pricing, Reads):
    """The order path (and, through :class:`Reads`, the read routes), with each collaborator
    named (:class:`Collaborators`)."""

    async def handle(
        self, request: web.Request, dialect: Dialect, match: Match | None
    ) -> web.StreamResponse:
        """``match``: the order route the request matched, None for any other path.

        Refusals are raised for the error boundary to render; on order routes they are
        audited here first (SPEC §12: every order decision is recorded)."""
        started = time.perf_counter()
        trace = Trace(
            dialect.name,
            request.method,
            request.path,
            route_class=match.route.action.value if match else "read",
            target=request.raw_path,
        )
        try:
            ip = client_ip(request, self.server.trusted_proxies)
            trace.client_ip = str(ip)
            token = dialect.token(request.headers)
            if match is None and dialect.is_order_path(request.path):
                # Authenticated first (issue 17): a dead token hears 401 here as a random one
                # does, never which methods the path has.
                snapshot = await self.authenticate(request, dialect)
                if snapshot.credential.kind is CredentialKind.ANALYTICS:
                    raise Refused(
                        Reason.READ_ONLY_TOKEN,
                        "the analytics token is read-only and never reaches an order route",
                    )
                raise Refused(
                    Reason.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.path}"
                )
            if match is None:
                return await self._other(request, dialect, trace)
            return await self._order(request, dialect, match, ip, token, trace, started)
        except Refused as refused:
            self._refused(refused.refusal, trace, match is not None)
            raise
        except StoreUnavailable as exc:
            log.warning(
                "%s %s refused, the store did not answer: %s", request.method, request.path, exc
            )
            refusal = Refuse(Reason.STORE_UNAVAILABLE, STORE_UNAVAILABLE)
            self._refused(refusal, trace, match is not None)
            raise
        finally:
            note = request.get(ACCESS)
            if note is not None:  # the request log's line (accesslog.py)
                note.dialect, note.route_class = dialect.name, trace.route_class
                note.account, note.upstream_ms = trace.user_id, trace.upstream_latency_ms
                note.decision, note.reason = trace.decision, trace.reason

    # order routes ---------------------------------------------------------------------------

    async def _order(
        self,
        request: web.Request,
        dialect: Dialect,
        match: Match,
        ip: IPAddress,
        token: Token,
        trace: Trace,
        started: float,
    ) -> web.StreamResponse:
        route = match.route
        rules = self.rules
        body: bytes | None = None  # read once admitted: nobody else learns even its limit
        trace.headers = {h: request.headers[h] for h in REPLAYED_HEADERS if h in request.headers}
        hashed = token_hash(token.value)
        for _ in range(_MAX_STALE_RETRIES):
            snapshot = await identify_hash(
                self.credentials, hashed, dialect, session_id=token.session_id, verify=False
            )
            trace.user_id = snapshot.account.user_id
            trace.session_id = snapshot.credential.session_id
            trace.credential_sha256 = hashed
            self.admit(snapshot, ip)
            if body is None:
                body = await read_body(request, self.server.max_body_bytes)
                trace.body = body.decode(errors="replace")
            decoded = dialect.decode_request(match, body, request.raw_path)
            # SPEC §7 counts orders, not requests: decided before the idempotency claim and
            # any LTP fetch, so a request that alone exceeds the limit costs nothing
            count = orders_carried(
                [doc.intent for doc in decoded.docs],
                limit=rules.orders_per_second,
                freeze_quantity=self.instruments.freeze_quantity,
            )
            trace.original = [dict(doc.fields) for doc in decoded.docs]
            self._converted(dialect, await self.rewrite(dialect, decoded, snapshot, hashed))
            trace.rewritten = [dict(doc.fields) for doc in decoded.docs]
            claimed = await idempotency.claim(self.idempotency, request, snapshot, body)
            if claimed.replay is not None:
                trace.decision, trace.reason = "replayed", "idempotent_replay"
                return claimed.replay.response()
            try:
                retry_after = await self._take_rate_slot(snapshot, count)
            except StaleSnapshot:
                await idempotency.release(self.idempotency, claimed)
                continue
            except BaseException:
                await idempotency.release(self.idempotency, claimed)
                raise
            if retry_after is not None:
                await idempotency.release(self.idempotency, claimed)
                self.metrics.child(self.metrics.rate_limited, dialect.name).inc()
                carried = "this order" if count == 1 else f"these {count} orders"
                raise Refused(
                    Reason.RATE_LIMITED,
                    f"{carried} would make more than {rules.orders_per_second} orders in one"
                    f" second; retry after {retry_after:.3f} s",
                    retry_after=retry_after,
                )
            return await self._forward_order(
                request, dialect, route, decoded, snapshot, trace, started, claimed
            )
        raise Refused(Reason.STORE_UNAVAILABLE, "the account changed repeatedly; try again")

    def admit(self, snapshot: Snapshot, client_ip: IPAddress) -> None:
        """SPEC §5 steps 1-4: live, registered IP, session from it, holding its slot."""
        slot = snapshot.registration.slot_of(client_ip)
        admit_order(
            snapshot.credential,
            now=self.clock.now(),
            client_ip=client_ip,
            registration=snapshot.registration,
            slot_holder=None if slot is None else snapshot.slot_holders.get(slot),
        )

    async def admit_before_body(self, request: web.Request, dialect: Dialect) -> None:
        """The checks that need no body, for ``Expect: 100-continue`` (SPEC §12): raises
        Refused before the client is told to send the body."""
        try:
            ip = client_ip(request, self.server.trusted_proxies)
            snapshot = await identify(self.credentials, dialect.token(request.headers), dialect)
        except StoreUnavailable as exc:
            raise Refused(Reason.STORE_UNAVAILABLE, STORE_UNAVAILABLE) from exc
        self.admit(snapshot, ip)

    async def _take_rate_slot(self, snapshot: Snapshot, count: int) -> float | None:
        rules = self.rules
        deadline = self.clock.monotonic() + rules.queue_max_wait_ms / 1000
        while True:
            # wall time, not monotonic: with a shared store every instance's windows must agree
            retry_after = await self.admission.admit(
                snapshot,
                now=self.clock.now().timestamp(),
                limit=rules.orders_per_second,
                count=count,
            )
            if retry_after is None or rules.rate_limit_mode != "queue":
                return retry_after
            if self.clock.monotonic() + retry_after > deadline:
                return retry_after
            await self.clock.sleep(retry_after)

    async def _forward_order(
        self,
        request: web.Request,
        dialect: Dialect,
        route: Route,
        decoded: Decoded,
        snapshot: Snapshot,
        trace: Trace,
        started: float,
        claimed: Claim,
    ) -> web.StreamResponse:
        metrics = self.metrics
        rules = self.rules
        body, content_type = dialect.encode(decoded)
        path_qs = decoded.target  # the routed path and the rebuilt query (SPEC §10)
        headers = self._upstream_headers(request, dialect, snapshot, path_qs, body or None)
        account = snapshot.account  # SPEC §8: each account's own algo, else the configured one
        headers.update(
            dialect.algo_headers(
                account.algo_id or rules.algo_id, account.algo_name or rules.algo_name
            )
        )
        if content_type:
            headers["Content-Type"] = content_type
        trace.decision = "admitted"
        overhead = time.perf_counter() - started
        request[SENT] = True  # from here on no answer may claim that nothing was sent
        try:
            upstream = await self.upstream.send(
                dialect.name,
                request.method,
                path_qs,
                headers,
                body or None,
                host=route.host,
                **self._via(snapshot, dialect),
            )
        except UpstreamError as exc:
            trace.outcome = "unknown" if exc.outcome_unknown else "not_sent"
            trace.reason = exc.reason.value
            extra = outcome(decoded, trace.outcome)
            response = dialect.refusal(Refuse(exc.reason, str(exc)), extra)
        else:
            trace.upstream_status = upstream.status
            trace.upstream_latency_ms = round(upstream.latency_s * 1000, 3)
            metrics.child(metrics.upstream_latency, dialect.name).observe(upstream.latency_s)
            response = order_answer(dialect, decoded, upstream, trace)
            if upstream.status < 300 and route.action is Action.PLACE and decoded.docs:
                await self._remember(dialect, route, decoded, snapshot, upstream, trace)
        trace.status = response.status
        metrics.child(metrics.overhead, dialect.name).observe(overhead)
        if claimed.record is not None:
            await self._best_effort(
                "idempotency", idempotency.finish(self.idempotency, claimed.record, response)
            )
        try:
            audit.record(self.audit_log, metrics, self.clock.now(), trace, decoded, "admitted")
        except Exception:
            self._bookkeeping_failed("audit")
        return response

    async def _remember(
        self,
        dialect: Dialect,
        route: Route,
        decoded: Decoded,
        snapshot: Snapshot,
        upstream: UpstreamResponse,
        trace: Trace,
    ) -> None:
        """Note who placed each new order, so a later modify or cancel is checked (SPEC §6)."""
        try:
            ids = dialect.order_ids(route, upstream.body)
        except Exception:  # an answer shaped unlike any the dialect knows: still the answer
            self._bookkeeping_failed("order_ids")
            return
        trace.order_ids = ids
        for doc, order_id in zip(decoded.docs, ids, strict=False):
            intent = doc.intent
            if intent.instrument_key and intent.side:
                known = KnownOrder(
                    order_id, snapshot.account.user_id, intent.instrument_key, intent.side
                )
                await self._best_effort("remember_order", self.orders.remember_order(known))

    # SPEC §11: once an order's first byte went upstream, a store failure never turns the
    # answer into "nothing was sent"; what could not be recorded is logged and counted.
    async def _best_effort(self, what: str, write: Awaitable[None]) -> None:
        try:
            await write
        except Exception:
            self._bookkeeping_failed(what)

    def _bookkeeping_failed(self, what: str) -> None:
        log.warning(
            "an order went upstream, then %s failed; its answer stands", what, exc_info=True
        )
        self.metrics.child(self.metrics.bookkeeping_failures, what).inc()

    # the record ------------------------------------------------------------------------------

    def _refused(self, refusal: Refuse, trace: Trace, is_order: bool) -> None:
        if not is_order:
            return
        trace.reason = refusal.reason.value
        trace.message = refusal.message
        trace.status = refusal.status
        audit.record(self.audit_log, self.metrics, self.clock.now(), trace, None, "refused")
