"""The audit record of every order decision (SPEC §12): time, account, session id (never the
token), client IP, route, decision and reason, the original and rewritten orders, the LTP and
band used, the upstream's status and latency, and the outcome.

Each record has an ``audit_id`` and keeps enough of the request to explain it again later
(``POST /admin/v1/explain {"audit_id"}``): the target as sent, the body, the headers that
change a decision (``Content-Type``, ``Idempotency-Key``) and the SHA-256 of the credential,
which is the store's own lookup key and no use as a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .dialects.base import Decoded
from .ids import new_id
from .metrics import Metrics
from .stores.base import AuditEntry
from .stores.roles import AuditLog


@dataclass(slots=True)
class Trace:
    """What the audit log and metrics learn about one order-route request."""

    dialect: str
    method: str
    path: str
    at: str = ""  # ISO time of the decision, set when it is recorded
    route_class: str = "order"  # place, modify or cancel once the route is known
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
    audit_id: str = field(default_factory=new_id)
    target: str = ""  # path and query as sent
    body: str | None = None  # the body as sent (UTF-8, undecodable bytes replaced)
    headers: dict[str, str] = field(default_factory=dict)  # REPLAYED_HEADERS the client sent
    credential_sha256: str | None = None


# The client headers an explain of a record needs besides the credential.
REPLAYED_HEADERS = ("Content-Type", "Idempotency-Key")


def record(
    log: AuditLog,
    metrics: Metrics,
    at: datetime,
    trace: Trace,
    decoded: Decoded | None,
    decision: str,
) -> None:
    """Count the decision and append it to the audit log (best effort: the decision stands)."""
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
    metrics.child(
        metrics.decisions, trace.dialect, trace.route_class, trace.decision, trace.reason or "ok"
    ).inc()
    trace.at = at.isoformat()
    # orjson writes the dataclass field by field; Decimals in the orders become strings
    log.audit(AuditEntry(trace.at, trace.user_id, orjson.dumps(trace, default=str)))
