"""Read APIs the web console needs (issue 14): an account's own sessions, its own decisions
and its orders per second; for the operator, one overview of every account.

Each trader route answers about the caller's own account only: the account comes from the
credential, never from the request.  Sessions are listed without their tokens (only hashes are
stored, SPEC §5).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused
from rules.registry import next_change_allowed
from rules.types import CredentialKind

from ..explain import EXPLAINER
from ..forwarding import live_broker_session
from ..services import SERVICES, Services
from .common import authenticated, json_response

MAX_RECORDS = 10_000  # as the admin audit query's limit
SERIES_MINUTES = 5  # the orders/s chart's default span
OVERVIEW_MINUTES = 60


def _limit(request: web.Request, default: int, most: int, name: str = "limit") -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise Refused(Reason.BAD_REQUEST, f"{name} must be an integer from 1 to {most}")
    return int(raw)


def _at(record: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record.get("at", "")))
    except ValueError:  # an admin action's record may carry its time in another shape
        return None


async def list_sessions(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    now = services.clock.now()
    found, slots = await services.store.sessions_of(snapshot.account.user_id)
    holders = {session_id: slot for slot, session_id in slots.items()}
    sessions = [
        {
            "session_id": c.session_id,
            "created_ip": str(c.created_ip),
            "created_at": c.created_at.isoformat(),
            "expires_at": c.expires_at.isoformat(),
            # the slot it took at login, and whether it still holds it (a newer login from
            # the same IP takes it, SPEC §5 step 4)
            "slot": c.slot,
            "holds_slot": holders.get(c.session_id),
            "current": c.session_id == snapshot.credential.session_id,
        }
        for c in found
        if c.kind is CredentialKind.LOGIN and now < c.expires_at
    ]
    # The broker sessions the login relay keeps for the account (SPEC §14): held or not, since
    # when and until when, never a value.
    broker = {
        dialect: {"since": held.since.isoformat(), "expires_at": held.expires_at.isoformat()}
        for dialect in sorted(snapshot.account.broker_sessions)
        if (held := live_broker_session(snapshot, dialect, now)) is not None
    }
    return json_response(
        {"status": "success", "data": {"sessions": sessions, "broker_sessions": broker}}
    )


async def delete_session(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(Reason.FORBIDDEN, "only a login session may log out sessions")
    session_id = request.match_info["session_id"]
    found, _ = await services.store.sessions_of(snapshot.account.user_id)
    # Another account's session id is as unknown as a made-up one: nothing tells them apart.
    owned = any(c.session_id == session_id and c.kind is CredentialKind.LOGIN for c in found)
    if not owned or not await services.store.revoke_credential(session_id):
        raise Refused(Reason.NOT_FOUND, "no live session of this account with that id")
    return json_response({"status": "success", "data": {"session_id": session_id}})


async def ip_change(request: web.Request) -> web.StreamResponse:
    """When the registered IPs may change next (SPEC §4), with the server's own time, so the
    console's countdown does not depend on the browser's clock."""
    services, snapshot = await authenticated(request)
    account = snapshot.account
    rules = services.config.rules
    registration = await services.store.get_registration(account.parent_id or account.user_id)
    now = services.clock.now()
    allowed = next_change_allowed(registration, policy=rules.ip_change, tz=rules.timezone)
    return json_response(
        {
            "status": "success",
            "data": {
                "now": now.astimezone(rules.timezone).isoformat(),
                "policy": rules.ip_change.value,
                "next_change_at": (
                    None if allowed is None or allowed <= now else allowed.isoformat()
                ),
                "may_change": account.parent_id is None,
            },
        }
    )


async def list_decisions(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    limit = _limit(request, 50, MAX_RECORDS)
    records = await services.store.audit_query(user_id=snapshot.account.user_id, limit=limit)
    return json_response({"status": "success", "data": {"decisions": list(records)}})


def orders_series(
    records: Sequence[Mapping[str, Any]], *, now: datetime, seconds: int
) -> list[int]:
    """Admitted orders in each of the last ``seconds`` whole seconds, oldest first; a request
    counts the orders it carried, as the rate limit counts them (SPEC §7)."""
    counts = [0] * seconds
    start = now - timedelta(seconds=seconds)
    for record in records:
        at = _at(record)
        if record.get("decision") != "admitted" or at is None or not start < at <= now:
            continue
        second = min(seconds - 1, int((at - start).total_seconds()))  # now is the last's end
        counts[second] += max(1, len(record.get("original") or ()))
    return counts


async def orders_per_second(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    minutes = _limit(request, SERIES_MINUTES, 60, "minutes")
    now = services.clock.now()
    records = await services.store.audit_query(user_id=snapshot.account.user_id, limit=MAX_RECORDS)
    series = orders_series(records, now=now, seconds=minutes * 60)
    return json_response(
        {
            "status": "success",
            "data": {
                "until": now.isoformat(),
                "seconds": len(series),
                "limit": services.config.rules.orders_per_second,
                "orders": series,
            },
        }
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_ORDER_DECISIONS = frozenset({"admitted", "refused", "replayed"})


def decisions_overview(
    records: Sequence[Mapping[str, Any]], *, now: datetime, minutes: int
) -> dict[str, Any]:
    """Decisions per minute by reason (``ok`` for admitted) and upstream latency, from the
    audit log's order decisions of the last ``minutes``."""
    start = now - timedelta(minutes=minutes)
    per_minute: Counter[tuple[str, str]] = Counter()
    latencies: list[float] = []
    for record in records:
        at = _at(record)
        # order decisions only: admin actions, explains and relayed logins are audited too
        if at is None or record.get("decision") not in _ORDER_DECISIONS or not start <= at <= now:
            continue
        minute = at.replace(second=0, microsecond=0).isoformat()
        per_minute[(minute, str(record.get("reason") or "ok"))] += 1
        latency = record.get("upstream_latency_ms")
        if isinstance(latency, int | float):
            latencies.append(float(latency))
    return {
        "decisions_per_minute": [
            {"minute": minute, "reason": reason, "count": count}
            for (minute, reason), count in sorted(per_minute.items())
        ],
        "upstream_latency_ms": {
            "count": len(latencies),
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
            "max": max(latencies, default=None),
        },
    }


def _instrument_files_age(services: Services, now: datetime) -> float | None:
    """Seconds since the newest instrument file changed; None for the bundled sample."""
    files = services.config.instruments.files
    if not files:
        return None
    newest = max(os.stat(path).st_mtime for path in files)
    return round(now.timestamp() - newest, 1)


async def overview(request: web.Request) -> web.StreamResponse:
    """The operator's view (admin sub-app: its middleware checks the admin token)."""
    services = request.app[SERVICES]
    store = services.store
    now = services.clock.now()
    accounts = []
    for account in await store.list_accounts():
        registration = await store.get_registration(account.parent_id or account.user_id)
        found, _ = await store.sessions_of(account.user_id)
        members = [] if account.parent_id else await store.family_members(account.user_id)
        accounts.append(
            {
                "user_id": account.user_id,
                "name": account.name,
                "primary_ip": None if registration.primary is None else str(registration.primary),
                "secondary_ip": (
                    None if registration.secondary is None else str(registration.secondary)
                ),
                "parent_id": account.parent_id,
                # its own egress address (SPEC §14); a member without one uses its parent's
                "egress_ip": account.egress_ip,
                "family_members": len(members),
                "sessions": sum(
                    c.kind is CredentialKind.LOGIN and now < c.expires_at for c in found
                ),
            }
        )
    records = await store.audit_query(user_id=None, limit=MAX_RECORDS)
    return json_response(
        {
            "data": {
                "accounts": accounts,
                **decisions_overview(records, now=now, minutes=OVERVIEW_MINUTES),
                "instruments": {
                    "count": len(services.instruments),
                    "source": [str(p) for p in services.config.instruments.files]
                    or "bundled sample",
                    "age_s": _instrument_files_age(services, now),
                },
            }
        }
    )


async def explain_decision(request: web.Request) -> web.StreamResponse:
    """One of the caller's own order decisions explained again (SPEC §12's explain, as the
    console shows a refused order): the step that refuses now, and why."""
    _, snapshot = await authenticated(request)
    explainer = request.config_dict[EXPLAINER]
    answer = await explainer.explain_audit(
        request.match_info["audit_id"], user_id=snapshot.account.user_id
    )
    return json_response({"status": "success", "data": answer})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/gateway/v1/sessions", list_sessions)
    router.add_delete("/gateway/v1/sessions/{session_id}", delete_session)
    router.add_get("/gateway/v1/ip-change", ip_change)
    router.add_get("/gateway/v1/decisions", list_decisions)
    router.add_get("/gateway/v1/decisions/{audit_id}/explain", explain_decision)
    router.add_get("/gateway/v1/orders-per-second", orders_per_second)


def add_admin_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/overview", overview)
