"""The admin API under ``/admin/v1`` (SPEC §12, §13), behind ``Bearer <admin.token>``.

Operators create accounts and apps, push LTPs from a feed, read the audit log, revoke
sessions, override an account's static IPs (audited, and without the weekly cooldown: the
operator is the one who verified the change) and store an account's upstream credential per
dialect (audited by header name; its values never leave the store except towards the
upstream) and its algo id and name (SPEC §8, audited).  With no admin token configured the
admin API answers 403 to everything.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from rules.algo import FIELDS, check_algo_value, parse_algo_update
from rules.decisions import Reason, Refused
from rules.registry import Registration, check_ip_commit, parse_ip_update
from rules.upstream_auth import parse_upstream_auth

from .api import broker, family
from .api.apps import app_view, new_app
from .api.common import account_or_404, json_body, json_response
from .api.userip import ip_view
from .errors import Handler
from .explain import EXPLAINER, parse_probe
from .services import SERVICES, Services
from .stores.base import Account, AuditEntry, Duplicate


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[SERVICES].config.admin.token
    values = request.headers.getall("Authorization", [])
    scheme, _, given = values[0].partition(" ") if len(values) == 1 else ("", "", "")
    given = given.strip() if scheme.lower() == "bearer" else ""
    if not expected:
        raise Refused(Reason.FORBIDDEN, "the admin API is disabled: set admin.token")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(Reason.INVALID_TOKEN, "admin API needs Authorization: Bearer <admin.token>")
    response: web.StreamResponse = await handler(request)
    return response


def _account_view(account: Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "name": account.name,
        "parent_id": account.parent_id,
        "algo_id": account.algo_id,
        "algo_name": account.algo_name,
        "created_at": account.created_at.isoformat(),
        "upstream_auth": sorted(account.upstream_auth),  # dialect names only, never values
        "egress_ip": account.egress_ip,  # its own; a family member without one uses the parent's
        "broker_user_id": account.broker_user_id,
    }


def _string(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise Refused(
            Reason.BAD_REQUEST, f"{name} must be a non-empty string of at most 64 characters"
        )
    return value


async def create_account(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    body = await json_body(request)
    user_id = _string(body, "user_id")
    name = _string(body, "name")
    algo = {k: check_algo_value(k, body[k]) for k in FIELDS if body.get(k) is not None}
    account = Account(
        user_id=user_id,
        name=name,
        created_at=services.clock.now(),
        algo_id=algo.get("algo_id"),
        algo_name=algo.get("algo_name"),
    )
    try:
        await services.store.create_account(account)
    except Duplicate as exc:
        raise Refused(Reason.CONFLICT, f"account {user_id!r} exists") from exc
    return json_response(_account_view(account), 201)


async def list_accounts(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    accounts = await services.store.list_accounts()
    by_id = {a.user_id: a for a in accounts}
    data = [
        {
            **_account_view(a),
            "broker_sessions": await broker.broker_sessions_view(services, a, by_id),
        }
        for a in accounts
    ]
    return json_response({"data": data})


async def create_app_for(request: web.Request) -> web.StreamResponse:
    app, secret = await new_app(request.app[SERVICES], request.match_info["user_id"])
    return json_response(app_view(app, secret), 201)


async def put_account(request: web.Request) -> web.StreamResponse:
    """SPEC §8: the account's own algo id and name, sent on its orders instead of the
    configured ones; audited with the values before and after."""
    services = request.app[SERVICES]
    update = parse_algo_update(await json_body(request))
    account = await account_or_404(services, request.match_info["user_id"])
    algo_id, algo_name = update.applied_to(account.algo_id, account.algo_name)
    if not await services.store.set_algo(account.user_id, algo_id=algo_id, algo_name=algo_name):
        raise Refused(Reason.NOT_FOUND, f"no account {account.user_id!r}")
    services.store.audit(
        AuditEntry.of(
            {
                "at": services.clock.now().isoformat(),
                "user_id": account.user_id,
                "decision": "admin_algo_set",
                "original": {"algo_id": account.algo_id, "algo_name": account.algo_name},
                "rewritten": {"algo_id": algo_id, "algo_name": algo_name},
            }
        )
    )
    return json_response(_account_view(replace(account, algo_id=algo_id, algo_name=algo_name)))


def parse_prices(body: Any) -> dict[str, Decimal]:
    if not isinstance(body, dict) or not body:
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"<instrument_key>": <price>, …}')
    prices: dict[str, Decimal] = {}
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            raise Refused(Reason.BAD_REQUEST, f"price of {key} must be a number, got {value!r}")
        try:
            price = Decimal(value)
        except InvalidOperation as exc:
            raise Refused(
                Reason.BAD_REQUEST, f"price of {key} must be a number, got {value!r}"
            ) from exc
        if not price.is_finite() or price <= 0:
            raise Refused(Reason.BAD_REQUEST, f"price of {key} must be positive, got {value!r}")
        prices[key] = price
    return prices


async def push_ltp(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    for key, price in parse_prices(await json_body(request)).items():
        services.ltp.push(key, price)
    return web.Response(status=204)


async def audit_query(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    raw_limit = request.query.get("limit", "100")
    # isascii: "²".isdigit() is True and int("²") raises (found by tests/fuzz)
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= 10_000:
        raise Refused(Reason.BAD_REQUEST, "limit must be an integer from 1 to 10000")
    records = await services.store.audit_query(
        user_id=request.query.get("user_id") or None, limit=int(raw_limit)
    )
    return json_response({"data": list(records)})


async def explain(request: web.Request) -> web.StreamResponse:
    """SPEC §12: a request as a client would send it, or ``{"audit_id"}``, explained."""
    body = await json_body(request)
    explainer = request.config_dict[EXPLAINER]
    if isinstance(body, dict) and "audit_id" in body:
        audit_id = body["audit_id"]
        if not isinstance(audit_id, str) or not audit_id:
            raise Refused(Reason.BAD_REQUEST, "audit_id must be an audit record's id")
        return json_response(await explainer.explain_audit(audit_id))
    return json_response(await explainer.explain(parse_probe(body)))


async def explain_audit(request: web.Request) -> web.StreamResponse:
    explainer = request.config_dict[EXPLAINER]
    return json_response(await explainer.explain_audit(request.match_info["audit_id"]))


async def revoke_session(request: web.Request) -> web.StreamResponse:
    revoked = await request.app[SERVICES].store.revoke_credential(request.match_info["session_id"])
    if not revoked:
        raise Refused(Reason.NOT_FOUND, "no live session with that id")
    return web.Response(status=204)


async def revoke_account_sessions(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    count = await services.store.revoke_account(account.user_id)
    return json_response({"user_id": account.user_id, "revoked": count})


async def get_ip(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    registration = await services.store.get_registration(account.parent_id or account.user_id)
    return json_response(
        {"status": "success", "data": await ip_view(services, account, registration)}
    )


def _ips(registration: Registration) -> dict[str, str | None]:
    """An audit record's IPs: strings, or null for an unset one (never the string "None")."""
    return {
        "primary_ip": None if registration.primary is None else str(registration.primary),
        "secondary_ip": None if registration.secondary is None else str(registration.secondary),
    }


async def override_ip(services: Services, user_id: str, body: Any) -> dict[str, Any]:
    """Set an account's IPs without the cooldown; invalidates its sessions like any change."""
    account = await account_or_404(services, user_id)
    if account.parent_id is not None:
        raise Refused(
            Reason.IP_CHANGE_NOT_PERMITTED, f"{user_id} is a family member; set the parent's IPs"
        )
    update = parse_ip_update(body, public_only=services.config.rules.public_ips_only)
    current = await services.store.get_registration(user_id)
    now = services.clock.now()
    new = Registration(
        primary=update.primary,
        secondary=update.secondary,
        primary_updated_at=now if update.primary != current.primary else current.primary_updated_at,
        secondary_updated_at=(
            now if update.secondary != current.secondary else current.secondary_updated_at
        ),
        changed_at=now,
        version=current.version + 1,
    )
    check_ip_commit(
        await services.store.apply_ip_change(user_id, new, expected_version=current.version)
    )
    services.store.audit(
        AuditEntry.of(
            {
                "at": now.isoformat(),
                "user_id": user_id,
                "decision": "admin_ip_override",
                "original": _ips(current),
                "rewritten": _ips(new),
            }
        )
    )
    data = await ip_view(services, account, new)
    data["access_tokens_invalidated"] = True
    return data


async def put_ip(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    data = await override_ip(services, request.match_info["user_id"], await json_body(request))
    return json_response({"status": "success", "data": data})


async def _upstream_auth_target(request: web.Request) -> tuple[Services, Account, str]:
    services = request.app[SERVICES]
    dialect = request.match_info["dialect"]
    if dialect not in services.dialects:
        raise Refused(
            Reason.BAD_REQUEST,
            f"unknown dialect {dialect!r}; one of {', '.join(sorted(services.dialects))}",
        )
    return services, await account_or_404(services, request.match_info["user_id"]), dialect


async def _audit_upstream_auth(
    services: Services, account: Account, dialect: str, names: list[str] | None
) -> None:
    record: dict[str, Any] = {
        "at": services.clock.now().isoformat(),
        "user_id": account.user_id,
        "decision": "admin_upstream_auth_set" if names else "admin_upstream_auth_clear",
        "dialect": dialect,
    }
    if names:
        record["headers"] = names  # the names only: the values are the broker's secrets
    services.store.audit(AuditEntry.of(record))


async def put_upstream_auth(request: web.Request) -> web.StreamResponse:
    services, account, dialect = await _upstream_auth_target(request)
    headers = parse_upstream_auth(await json_body(request))
    if not await services.store.set_upstream_auth(account.user_id, dialect, headers):
        raise Refused(Reason.NOT_FOUND, f"no account {account.user_id!r}")
    await _audit_upstream_auth(services, account, dialect, list(headers))
    return web.Response(status=204)


async def delete_upstream_auth(request: web.Request) -> web.StreamResponse:
    services, account, dialect = await _upstream_auth_target(request)
    if not await services.store.set_upstream_auth(account.user_id, dialect, None):
        raise Refused(Reason.NOT_FOUND, f"no account {account.user_id!r}")
    await _audit_upstream_auth(services, account, dialect, None)
    return web.Response(status=204)


def create_admin_app(services: Services) -> web.Application:
    admin = web.Application(middlewares=[admin_auth])
    admin[SERVICES] = services
    admin.router.add_post("/accounts", create_account)
    admin.router.add_get("/accounts", list_accounts)
    admin.router.add_put("/accounts/{user_id}", put_account)
    admin.router.add_post("/accounts/{user_id}/apps", create_app_for)
    admin.router.add_delete("/accounts/{user_id}/sessions", revoke_account_sessions)
    admin.router.add_get("/accounts/{user_id}/ip", get_ip)
    admin.router.add_put("/accounts/{user_id}/ip", put_ip)
    auth_path = "/accounts/{user_id}/upstream-auth/{dialect}"
    admin.router.add_put(auth_path, put_upstream_auth)
    admin.router.add_delete(auth_path, delete_upstream_auth)
    family.add_admin_routes(admin.router)
    broker.add_admin_routes(admin)
    admin.router.add_delete("/sessions/{session_id}", revoke_session)
    admin.router.add_put("/ltp", push_ltp)
    admin.router.add_get("/audit", audit_query)
    admin.router.add_post("/explain", explain)
    admin.router.add_get("/audit/{audit_id}/explain", explain_audit)
    return admin
