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

import contextlib
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from rules.analytics import default_table
from rules.clientip import client_ip as resolve_client_ip
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

from .codec import decode_json, encode_json
from .dialects.base import Decoded, Dialect, Token
from .services import Services, token_hash
from .stores.base import IdempotencyRecord, Snapshot, StaleSnapshot, StoreUnavailable
from .upstream import UpstreamError, UpstreamResponse, response_headers, sign

_MAX_STALE_RETRIES = 3


@dataclass(slots=True)
class Trace:
    """What the audit log and metrics learn about one order-route request."""

    dialect: str
    method: str
    path: str
    client_ip: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    decision: str = "refused"
    reason: str | None = None
    status: int = 0
    original: list[dict[str, Any]] = field(default_factory=list)
    rewritten: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[dict[str, str]] = field(default_factory=list)
    upstream_status: int | None = None
    upstream_latency_ms: float | None = None
    outcome: str | None = None
    order_ids: list[str] = field(default_factory=list)
    message: str | None = None


def request_client_ip(request: web.Request, services: Services) -> IPAddress:
    """The client IP (SPEC §3): the TCP peer, or the forwarded chain behind trusted proxies."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return resolve_client_ip(
        None if not peer else str(peer[0]),
        forwarded=request.headers.getall("Forwarded", []),
        x_forwarded_for=request.headers.getall("X-Forwarded-For", []),
        trusted=services.config.server.trusted_proxies,
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Refused(Reason.BODY_TOO_LARGE, f"request body over {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise Refused(Reason.BODY_TOO_LARGE, f"request body over {limit} bytes") from exc


async def identify(
    services: Services, token: Token, dialect: Dialect | None = None, *, verify: bool = True
) -> Snapshot:
    """The credential's snapshot.  ``verify`` proves a cached snapshot current with a shared
    store; the order path skips it because ``Store.admit`` proves it in the same round trip."""
    snapshot = await services.store.snapshot(token_hash(token.value))
    if snapshot is not None and verify:
        try:
            await services.store.verify(snapshot)
        except StaleSnapshot:
            snapshot = await services.store.snapshot(token_hash(token.value))
    if snapshot is None or (
        token.session_id is not None and token.session_id != snapshot.credential.session_id
    ):
        raise Refused(Reason.INVALID_TOKEN, "invalid or expired access token; log in again")
    kind = snapshot.credential.kind
    if dialect is not None and kind not in dialect.credential_kinds:
        raise Refused(
            Reason.INVALID_TOKEN,
            f"{dialect.name} routes do not accept {kind.value} credentials; log in for a session",
        )
    return snapshot


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def handle(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        started = time.perf_counter()
        match = dialect.match(request.method, request.path)
        trace = Trace(dialect.name, request.method, request.path)
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
        except StoreUnavailable:
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
            slot = snapshot.registration.slot_of(client_ip)
            admit_order(
                snapshot.credential,
                now=s.clock.now(),
                client_ip=client_ip,
                registration=snapshot.registration,
                slot_holder=None if slot is None else snapshot.slot_holders.get(slot),
            )
            decoded = dialect.decode(route, body, {**request.query, **match.params})
            trace.original = [dict(doc.fields) for doc in decoded.docs]
            await self._rewrite(dialect, decoded, snapshot, token)
            trace.rewritten = [dict(doc.fields) for doc in decoded.docs]
            idem = await self._claim_idempotency(request, snapshot, body)
            if isinstance(idem, web.Response):
                trace.decision, trace.reason = "replayed", "idempotent_replay"
                return idem
            try:
                retry_after = await self._take_rate_slot(snapshot)
            except StaleSnapshot:
                await self._release_idempotency(idem)
                continue
            except BaseException:
                await self._release_idempotency(idem)
                raise
            if retry_after is not None:
                await self._release_idempotency(idem)
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
                seen = await s.ltp.fresh(instrument, lambda i: self._fetch_ltp(dialect, i, token))
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
        # carries the account's upstream credential as it is now, not as a cache last saw it.
        snapshot = await identify(self.s, token, dialect)
        stored = snapshot.account.upstream_auth.get(dialect.name)
        headers = _with_stored({"Accept": "application/json"}, stored)
        if not stored:
            headers["X-Gateway-User-Id"] = snapshot.account.user_id
        resp = await self.s.upstream.send(
            dialect.name, "GET", dialect.ltp_path(instrument), headers, None
        )
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

    async def _claim_idempotency(
        self, request: web.Request, snapshot: Snapshot, body: bytes
    ) -> IdempotencyRecord | web.Response | None:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not 0 < len(key) <= 255:
            raise Refused(Reason.BAD_REQUEST, "Idempotency-Key must be 1 to 255 characters")
        digest = hashlib.sha256(
            b"\0".join((request.method.encode(), request.raw_path.encode(), body))
        ).hexdigest()
        record = IdempotencyRecord(user_id=snapshot.account.user_id, key=key, body_hash=digest)
        existing = await self.s.store.begin_idempotent(record)
        if existing is None:
            return record
        if existing.body_hash != digest:
            raise Refused(
                Reason.IDEMPOTENCY_MISMATCH,
                "this Idempotency-Key was used with a different request",
            )
        if existing.status is None:
            raise Refused(Reason.CONFLICT, "a request with this Idempotency-Key is still in flight")
        headers = dict(existing.headers)
        headers["Idempotent-Replayed"] = "true"
        return web.Response(status=existing.status, body=existing.body, headers=headers)

    async def _release_idempotency(self, record: IdempotencyRecord | None) -> None:
        if record is not None:
            await self.s.store.release_idempotent(record)

    def _upstream_headers(
        self, request: web.Request, dialect: Dialect, snapshot: Snapshot, path: str
    ) -> dict[str, str]:
        """Built from an allowlist: the dialect's known headers and the gateway's own identity
        headers, or instead of those the account's stored upstream credential (SPEC §10): a
        real broker authenticates the account by it and never learns the gateway's ids."""
        s = self.s
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in dialect.forwarded_headers
        }
        stored = snapshot.account.upstream_auth.get(dialect.name)
        if stored:
            return _with_stored(headers, stored)
        user_id = snapshot.account.user_id
        headers["X-Gateway-User-Id"] = user_id
        headers["X-Gateway-Session-Id"] = snapshot.credential.session_id
        secret = s.config.upstream.shared_secret
        if secret:
            stamp = str(int(s.clock.now().timestamp()))
            headers["X-Gateway-Timestamp"] = stamp
            headers["X-Gateway-Signature"] = sign(secret, request.method, path, user_id, stamp)
        return headers

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
        headers = self._upstream_headers(request, dialect, snapshot, request.path)
        headers.update(
            dialect.algo_headers(snapshot.account.algo_id or rules.algo_id, rules.algo_name)
        )
        if content_type:
            headers["Content-Type"] = content_type
        path_qs = request.raw_path  # the canonical target the guard checked, bytes as sent
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
            await s.store.finish_idempotent(
                IdempotencyRecord(
                    user_id=idem.user_id,
                    key=idem.key,
                    body_hash=idem.body_hash,
                    status=response.status,
                    headers={
                        str(k): v
                        for k, v in response.headers.items()
                        if k.lower() != "content-length"
                    },
                    body=response.body if isinstance(response.body, bytes) else b"",
                )
            )
        await self._record(trace, decoded, "admitted")
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
            headers["X-Gateway-LTP"] = ", ".join(
                str(c.ltp if c.ltp is not None else c.reference) for c in converted
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
        headers = self._upstream_headers(request, dialect, snapshot, request.path)
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
            await self._record(trace, None, "refused")
        return dialect.refusal(refusal)

    async def _record(self, trace: Trace, decoded: Decoded | None, decision: str) -> None:
        s = self.s
        trace.decision = decision if trace.decision != "replayed" else trace.decision
        if decoded is not None:
            trace.conversions = [
                {
                    "order_type": d.conversion.order_type.value,
                    "limit_price": str(d.conversion.limit_price),
                    "reference": str(d.conversion.reference),
                    "ltp": "" if d.conversion.ltp is None else str(d.conversion.ltp),
                    "band": str(d.conversion.band),
                }
                for d in decoded.docs
                if d.conversion is not None
            ]
        s.metrics.child(
            s.metrics.decisions, trace.dialect, "order", trace.decision, trace.reason or "ok"
        ).inc()
        record: dict[str, Any] = {"at": s.clock.now().isoformat(), **_trace_fields(trace)}
        with contextlib.suppress(StoreUnavailable):  # the decision stands; the log is best effort
            await s.store.audit(record)


def _with_stored(headers: dict[str, str], stored: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` with the stored credential's headers replacing any of the same name."""
    if not stored:
        return headers
    names = {name.lower() for name in stored}
    merged = {name: value for name, value in headers.items() if name.lower() not in names}
    merged.update(stored)
    return merged


def _trace_fields(trace: Trace) -> dict[str, Any]:
    return {name: getattr(trace, name) for name in Trace.__slots__}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def refusal_json(refuse: Refuse) -> web.Response:
    """The gateway's own envelope (SPEC §2): ``{"error": CODE, "message": …}``."""
    return web.json_response(
        {"error": refuse.reason.name, "message": refuse.message},
        status=refuse.status,
        dumps=lambda v: encode_json(v).decode(),
    )


def decode_object(body: bytes) -> Mapping[str, Any]:
    value = decode_json(body)
    if not isinstance(value, dict):
        raise Refused(Reason.BAD_REQUEST, "the request body must be a JSON object")
    return value
