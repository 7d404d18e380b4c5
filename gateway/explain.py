"""Explain (SPEC §12): what the gateway would decide about a request, and why, step by step.

``POST /admin/v1/explain`` takes a request as a client would send it (client IP, method,
path, headers, raw body), or ``{"audit_id"}`` to explain a recorded order decision again, and
answers the decision, the status and reason the client would get, each step of SPEC §5-§7
(route, credential, registered IP, session IP, slot, decode, ownership, conversion,
idempotency, rate window), the orders as they would be priced and the body that would go
upstream.

It runs the pipeline's own functions (``Pipeline.admit``, ``Pipeline.rewrite``, the
dialect's decode and encode, :func:`idempotency.peek`, the store's ``peek_admit``) in the
pipeline's order, so an explanation cannot drift from the decision.  Nothing is forwarded and
nothing is consumed: no rate slot (the window is read), no Idempotency-Key claim (the key is
read), no session slot.  A MARKET order's LTP may be fetched from the upstream's quote route
as the pipeline would, counted against nothing.  The explain itself is audited (decision
``explain``); the probe's headers, which carry a token, are never recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from rules.analytics import default_table
from rules.decisions import Reason, Refuse, Refused
from rules.ip import parse_ip
from rules.orders import orders_carried
from rules.routes import Access, Match
from rules.sessions import check_live
from rules.tokens import check_scope
from rules.types import Action, CredentialKind, IPAddress

from . import idempotency
from .audit import REPLAYED_HEADERS
from .dialects.base import Decoded, Dialect
from .edge import identify, identify_hash
from .errors import STORE_UNAVAILABLE, Envelopes
from .ids import new_id
from .pipeline import Pipeline
from .services import token_hash
from .stores.base import AuditEntry, Snapshot, StoreUnavailable

# Where a refusal raised by Pipeline.admit belongs (SPEC §5 steps 1-4).
_ADMISSION = ("credential", "registered_ip", "session_ip", "slot")
_ADMISSION_STEP = {
    Reason.IP_NOT_REGISTERED: "registered_ip",
    Reason.SESSION_IP_MISMATCH: "session_ip",
    Reason.SLOT_TAKEN: "slot",
}
# Pipeline.rewrite resolves each order against the order book, then prices it (SPEC §6).
_OWNERSHIP_REASONS = frozenset({Reason.UNKNOWN_ORDER, Reason.FOREIGN_ORDER})
# How far back an audit record can be explained: the audit query's own bound.
AUDIT_LOOKBACK = 10_000


@dataclass(frozen=True, slots=True)
class Probe:
    """A request as a client would send it."""

    client_ip: IPAddress
    method: str
    target: str  # path and query, as sent
    headers: CIMultiDictProxy[str]
    body: bytes
    credential_sha256: str | None = None  # an audit record's credential, instead of headers


@dataclass(slots=True)
class _Walk:
    """The explanation as it is built; ``at`` is the step being taken."""

    at: str = "route"
    steps: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    admission: dict[str, str] = field(default_factory=dict)  # each step's detail when it passes
    upstream_body: str | None = None
    status: int = 200
    refusal: Refuse | None = None
    account: str | None = None

    def ok(self, step: str, detail: str) -> None:
        self.steps.append({"step": step, "ok": True, "detail": detail})

    def fail(self, refusal: Refuse) -> None:
        step = self.at
        if step == "admission":
            step = _ADMISSION_STEP.get(refusal.reason, "credential")
            for passed in _ADMISSION[: _ADMISSION.index(step)]:
                self.ok(passed, self.admission[passed])
        elif step == "rewrite":
            step = "ownership" if refusal.reason in _OWNERSHIP_REASONS else "conversion"
            if step == "conversion":
                self.ok("ownership", "every order named is this account's, or a new one")
        self.steps.append({"step": step, "ok": False, "detail": refusal.message})
        self.refusal, self.status = refusal, refusal.status

    def view(self) -> dict[str, Any]:
        refused = self.refusal is not None
        return {
            "decision": "refused" if refused else "admitted",
            "status": self.status,
            "reason": self.refusal.reason.name if self.refusal else None,
            "failed_step": next((s["step"] for s in self.steps if not s["ok"]), None),
            "steps": self.steps,
            "orders": self.orders,
            "upstream_body": None if refused else self.upstream_body,
        }


def parse_probe(body: Any) -> Probe:
    """``{"client_ip", "method", "path", "headers": {…}, "body": "…"}`` (SPEC §12)."""
    if not isinstance(body, dict):
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"client_ip", "method", "path", …}')
    method, path = body.get("method"), body.get("path")
    if not isinstance(method, str) or not method.isalpha():
        raise Refused(Reason.BAD_REQUEST, "method must be an HTTP method, e.g. POST")
    if not isinstance(path, str) or not path.startswith("/"):
        raise Refused(Reason.BAD_REQUEST, "path must start with / (a query may follow)")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise Refused(Reason.BAD_REQUEST, 'headers must be {"Name": "value", …}')
    raw = body.get("body") or ""
    if not isinstance(raw, str):
        raise Refused(Reason.BAD_REQUEST, "body must be the raw request body, as a string")
    return Probe(
        client_ip=parse_ip(body.get("client_ip")),
        method=method.upper(),
        target=path,
        headers=CIMultiDictProxy(CIMultiDict(headers)),
        body=raw.encode(),
    )


class Explainer:
    def __init__(self, pipeline: Pipeline, envelopes: Envelopes) -> None:
        self.pipeline = pipeline
        self.envelopes = envelopes

    async def explain(self, probe: Probe, *, audit_id: str | None = None) -> dict[str, Any]:
        walk = _Walk()
        try:
            await self._walk(probe, walk)
        except Refused as refused:
            walk.fail(refused.refusal)
        except StoreUnavailable:
            walk.fail(Refuse(Reason.STORE_UNAVAILABLE, STORE_UNAVAILABLE))
        answer = walk.view()
        self._audit(probe, walk, answer, audit_id)
        return answer

    async def explain_audit(self, audit_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """The recorded order decision ``audit_id``, explained again as things stand now; with
        ``user_id``, only among that account's records (a trader explains its own: another
        account's id is as unknown as a made-up one)."""
        records = await self.pipeline.audit_log.audit_query(user_id=user_id, limit=AUDIT_LOOKBACK)
        record = next((r for r in records if r.get("audit_id") == audit_id), None)
        if record is None:
            raise Refused(
                Reason.NOT_FOUND,
                f"no audit record {audit_id!r} among the newest {AUDIT_LOOKBACK}",
            )
        if not record.get("target") or record.get("client_ip") is None:
            raise Refused(
                Reason.BAD_REQUEST, f"audit record {audit_id!r} is not an order-route request"
            )
        headers = record.get("headers") or {}
        probe = Probe(
            client_ip=parse_ip(record["client_ip"]),
            method=str(record["method"]),
            target=str(record["target"]),
            headers=CIMultiDictProxy(
                CIMultiDict({k: str(v) for k, v in headers.items() if k in REPLAYED_HEADERS})
            ),
            body=str(record.get("body") or "").encode(),
            credential_sha256=record.get("credential_sha256"),
        )
        answer = await self.explain(probe, audit_id=audit_id)
        answer["audit_id"] = audit_id
        answer["recorded"] = {
            key: record.get(key) for key in ("at", "decision", "reason", "status", "message")
        }
        return answer

    async def _identify(self, probe: Probe, dialect: Dialect) -> Snapshot:
        credentials = self.pipeline.credentials
        if probe.credential_sha256 is not None:
            return await identify_hash(credentials, probe.credential_sha256, dialect)
        return await identify(credentials, dialect.token(probe.headers), dialect)

    async def _walk(self, probe: Probe, walk: _Walk) -> None:
        path = probe.target.split("?", 1)[0]
        dialect = self.envelopes.owner(path)
        if dialect is None:
            raise Refused(Reason.NOT_FOUND, f"no dialect owns {path}; only broker routes explain")
        match = dialect.match(probe.method, path)
        if match is None:
            await self._other(probe, dialect, path, walk)
            return
        route = match.route
        walk.ok("route", f"{dialect.name} {route.action.value}: {route.method} {route.template}")
        await self._order(probe, dialect, match, walk)

    async def _other(self, probe: Probe, dialect: Dialect, path: str, walk: _Walk) -> None:
        """A read, a public route, or a write no route admits (SPEC §2, §9)."""
        access = dialect.routes.access(probe.method, path)
        if dialect.is_order_path(path):
            raise Refused(Reason.METHOD_NOT_ALLOWED, f"{probe.method} is not allowed on {path}")
        if access is Access.CLOSED:
            raise Refused(
                Reason.NOT_FOUND,
                f"{probe.method} {path} is not an order route the gateway knows; writes under"
                " an order prefix are refused, never forwarded",
            )
        public = access is Access.PUBLIC
        walk.ok(
            "route",
            f"{dialect.name} {'public' if public else 'read'} route: forwarded with"
            " authentication only",
        )
        walk.at = "credential"
        if not public or probe.credential_sha256 or dialect.presents_credential(probe.headers):
            snapshot = await self._identify(probe, dialect)
            walk.account = snapshot.account.user_id
            check_scope(
                check_live(snapshot.credential, now=self.pipeline.clock.now()),
                method=probe.method,
                path=path,
                client_ip=probe.client_ip,
                registered=snapshot.registration.ips,
                table=default_table(),
            )
            walk.ok("credential", f"a live {snapshot.credential.kind.value} of {walk.account}")
        walk.upstream_body = probe.body.decode(errors="replace") or None

    async def _order(self, probe: Probe, dialect: Dialect, match: Match, walk: _Walk) -> None:
        p = self.pipeline
        walk.at = "credential"
        snapshot = await self._identify(probe, dialect)
        walk.account = snapshot.account.user_id
        walk.admission = _admission_details(snapshot, probe.client_ip)
        walk.at = "admission"
        p.admit(snapshot, probe.client_ip)
        for step in _ADMISSION:
            walk.ok(step, walk.admission[step])

        walk.at = "decode"
        decoded = dialect.decode_request(match, probe.body, probe.target)
        # SPEC §7: the same count the pipeline takes, refused the same way over the limit
        carried = orders_carried(
            [doc.intent for doc in decoded.docs],
            limit=p.rules.orders_per_second,
            freeze_quantity=p.instruments.freeze_quantity,
        )
        walk.ok(
            "decode",
            f"{len(decoded.docs)} order(s) in {dialect.name}'s shape, counting {carried}"
            " against the rate limit",
        )

        walk.at = "rewrite"
        hashed = probe.credential_sha256 or token_hash(dialect.token(probe.headers).value)
        await p.rewrite(dialect, decoded, snapshot, hashed)
        walk.ok("ownership", await self._ownership(decoded))
        walk.ok("conversion", self._conversion(decoded, walk))

        walk.at = "idempotency"
        claim = await idempotency.peek(
            p.idempotency, probe.headers, probe.method, probe.target, snapshot, probe.body
        )
        if claim.replay is not None:
            walk.ok(
                "idempotency",
                "a repeat of an answered request: its stored answer would be replayed and"
                " nothing sent",
            )
            walk.status = claim.replay.status
            return
        key = probe.headers.get("Idempotency-Key")
        walk.ok(
            "idempotency",
            "no Idempotency-Key"
            if key is None
            else f"the key {key!r} is free; it would be claimed",
        )

        walk.at = "rate_window"
        rules = p.rules
        limit = rules.orders_per_second
        count, wait = await p.admission.peek_admit(
            snapshot, now=p.clock.now().timestamp(), limit=limit, count=carried
        )
        held = f"{count} of {limit} orders in the last second"
        if wait is not None and not (
            rules.rate_limit_mode == "queue" and wait * 1000 <= rules.queue_max_wait_ms
        ):
            raise Refused(
                Reason.RATE_LIMITED,
                f"{held}; this one would not fit: retry after {wait:.3f} s",
                retry_after=wait,
            )
        walk.ok(
            "rate_window",
            f"{held}; this one fits" if wait is None else f"{held}; queued for {wait:.3f} s",
        )
        body, _ = dialect.encode(decoded)
        walk.upstream_body = body.decode(errors="replace")

    async def _ownership(self, decoded: Decoded) -> str:
        said: list[str] = []
        for doc in decoded.docs:
            intent = doc.intent
            if intent.order_id is None or intent.action is Action.PLACE:
                said.append("a new order")
                continue
            known = await self.pipeline.orders.known_order(intent.order_id)
            said.append(
                f"order {intent.order_id}: "
                + ("placed by this account" if known else "not placed through the gateway")
            )
        return "; ".join(said) or "no orders"

    def _conversion(self, decoded: Decoded, walk: _Walk) -> str:
        said: list[str] = []
        for doc in decoded.docs:
            intent, conv = doc.intent, doc.conversion
            if conv is None:
                kind = intent.order_type.value if intent.order_type else None
                said.append(f"{kind or intent.action.value}: unchanged")
                walk.orders.append(
                    {
                        "order_type": kind,
                        "limit_price": None if intent.price is None else str(intent.price),
                        "ltp": None,
                        "band": None,
                    }
                )
                continue
            instrument = self.pipeline.instruments.get(intent.instrument_key or "")
            tick = "unknown" if instrument is None else str(instrument.tick_size)
            ltp = None if conv.ltp is None else str(conv.ltp)
            said.append(
                f"{conv.original_type.value} becomes {conv.order_type.value} at"
                f" {conv.limit_price}: {'LTP ' + ltp if ltp else f'trigger {conv.reference}'},"
                f" band {conv.band}, tick {tick}"
            )
            walk.orders.append(
                {
                    "order_type": conv.order_type.value,
                    "limit_price": str(conv.limit_price),
                    "ltp": ltp,
                    "band": str(conv.band),
                }
            )
        return "; ".join(said) or "no orders"

    def _audit(
        self, probe: Probe, walk: _Walk, answer: dict[str, Any], audit_id: str | None
    ) -> None:
        p = self.pipeline
        record = {
            "at": p.clock.now().isoformat(),
            "audit_id": new_id(),
            "user_id": walk.account,
            "decision": "explain",
            "explained": {
                "client_ip": str(probe.client_ip),
                "method": probe.method,
                "target": probe.target,
                "audit_id": audit_id,
            },
            "result": answer["decision"],
            "reason": answer["reason"],
            "status": answer["status"],
        }
        p.audit_log.audit(AuditEntry.of(record))


def _admission_details(snapshot: Snapshot, client_ip: IPAddress) -> dict[str, str]:
    """What each admission step says when it passes (SPEC §5 steps 1-4)."""
    credential, registration = snapshot.credential, snapshot.registration
    registered = ", ".join(str(ip) for ip in registration.ordered_ips) or "none"
    session = credential.kind is not CredentialKind.API_TOKEN
    return {
        "credential": f"a live {credential.kind.value} of {snapshot.account.user_id}",
        "registered_ip": f"{client_ip} is registered (registered IPs: {registered})",
        "session_ip": (
            f"the session was created from {credential.created_ip}"
            if session
            else "an API token is not bound to the IP it was created from"
        ),
        "slot": (
            f"the session holds the order slot of {client_ip}"
            if session
            else "an API token takes no order slot"
        ),
    }


EXPLAINER = web.AppKey("explainer", Explainer)
