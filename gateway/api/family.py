"""Families (SPEC §9): a parent account and up to 10 member accounts sharing its static IPs.

Kotak Neo and Upstox let up to 11 accounts of one family (self, spouse, dependent children and
parents) trade from one registered static IP; only the parent registers or changes it.  Here:

- the parent adds and removes members (``POST``/``DELETE /gateway/v1/family/members``) from a
  login session; a member cannot manage the family, but may leave it (``DELETE`` of its own
  id), and a read-only token cannot change it;
- joining clears the member's own registration: it trades from the parent's IPs, and an
  address it held must not stay registered to an account outside the family once it leaves;
- an account is in at most one family, and a member cannot be the parent of another;
- joining or leaving ends the member's sessions: they were bound to the registration the
  member had, and its effective IPs are now different;
- sharing IPs gives no access to another member's orders: each member's orders go upstream
  under its own user id, and the pipeline refuses a modify or cancel of another account's
  order (403).

The operator's equivalents (``/admin/v1/accounts/{parent}/family…``) skip the session check.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused, contended
from rules.family import MAX_MEMBERS, check_join
from rules.types import CredentialKind

from ..services import SERVICES, Services
from ..stores.base import ATTEMPTS, Account, Commit, Snapshot
from ..stores.roles import Registry
from .common import (
    account_or_404,
    authenticated,
    gateway_error,
    json_body,
    json_response,
    with_envelope,
)

__all__ = ["MAX_MEMBERS", "add_routes", "join"]

_envelope = with_envelope(gateway_error)


def member_id(body: Any) -> str:
    value = body.get("user_id") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise Refused(
            Reason.BAD_REQUEST, 'the body must be {"user_id": "<member account>"} (a string)'
        )
    return value


async def family_view(services: Services, account: Account) -> dict[str, Any]:
    if account.parent_id is not None:
        return {
            "user_id": account.user_id,
            "role": "member",
            "parent_id": account.parent_id,
        }
    members = await services.store.family_members(account.user_id)
    return {
        "user_id": account.user_id,
        "role": "parent" if members else "none",
        "parent_id": None,
        "members": [{"user_id": m.user_id, "name": m.name} for m in members],
        "max_members": MAX_MEMBERS,
    }


async def _parent(request: web.Request) -> tuple[Services, Snapshot]:
    services, snapshot = await authenticated(request)
    account = snapshot.account
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(
            Reason.FORBIDDEN, "the family can only be changed from a login session, not a token"
        )
    if account.parent_id is not None:
        raise Refused(
            Reason.FORBIDDEN,
            f"{account.user_id} is a member of {account.parent_id}'s family; only the parent"
            " account can manage the family",
        )
    return services, snapshot


async def join(
    registry: Registry, parent_id: str, member_id: str, *, max_members: int = MAX_MEMBERS
) -> None:
    """Decide the join in ``rules.family`` and commit it only on the facts it was decided on."""
    for _ in range(ATTEMPTS):
        facts = await registry.join_facts(parent_id, member_id)
        check_join(parent_id, member_id, facts, max_members=max_members)
        if await registry.add_family_member(parent_id, member_id, expected=facts) is Commit.DONE:
            return
    raise contended(f"{parent_id}'s family")


async def add_member(services: Services, parent_id: str, user_id: str) -> dict[str, Any]:
    await join(services.store, parent_id, user_id)
    parent = await services.store.get_account(parent_id)
    assert parent is not None
    return await family_view(services, parent)


async def remove_member(services: Services, parent_id: str, user_id: str) -> dict[str, Any]:
    if not await services.store.remove_family_member(parent_id, user_id):
        raise Refused(Reason.NOT_FOUND, f"{user_id} is not a member of {parent_id}'s family")
    parent = await services.store.get_account(parent_id)
    if parent is None:
        raise Refused(Reason.NOT_FOUND, f"no account {parent_id!r}")
    return await family_view(services, parent)


# The gateway's own API, as the parent ------------------------------------------------------


@_envelope
async def get_family(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    data = await family_view(services, snapshot.account)
    return json_response({"status": "success", "data": data})


@_envelope
async def post_member(request: web.Request) -> web.StreamResponse:
    services, snapshot = await _parent(request)
    user_id = member_id(await json_body(request))
    data = await add_member(services, snapshot.account.user_id, user_id)
    return json_response({"status": "success", "data": data}, 201)


@_envelope
async def delete_member(request: web.Request) -> web.StreamResponse:
    user_id = request.match_info["user_id"]
    services, snapshot = await authenticated(request)
    account = snapshot.account
    if account.parent_id is not None and user_id == account.user_id:
        # A member may always leave: the parent adds accounts without their consent, so the
        # way out must not depend on the parent (the member then registers its own IPs).
        if snapshot.credential.kind is not CredentialKind.LOGIN:
            raise Refused(Reason.FORBIDDEN, "leaving a family needs a login session, not a token")
        await remove_member(services, account.parent_id, user_id)
        left = await services.store.get_account(user_id)
        assert left is not None
        return json_response({"status": "success", "data": await family_view(services, left)})
    services, snapshot = await _parent(request)
    data = await remove_member(services, snapshot.account.user_id, user_id)
    return json_response({"status": "success", "data": data})


# The admin API (mounted under /admin/v1 behind the admin token) -----------------------------


@_envelope
async def admin_get_family(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    return json_response({"status": "success", "data": await family_view(services, account)})


@_envelope
async def admin_post_member(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    parent = await account_or_404(services, request.match_info["user_id"])
    user_id = member_id(await json_body(request))
    data = await add_member(services, parent.user_id, user_id)
    return json_response({"status": "success", "data": data}, 201)


@_envelope
async def admin_delete_member(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    parent = await account_or_404(services, request.match_info["user_id"])
    data = await remove_member(services, parent.user_id, request.match_info["member_id"])
    return json_response({"status": "success", "data": data})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/gateway/v1/family", get_family)
    router.add_post("/gateway/v1/family/members", post_member)
    router.add_delete("/gateway/v1/family/members/{user_id}", delete_member)


def add_admin_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/accounts/{user_id}/family", admin_get_family)
    router.add_post("/accounts/{user_id}/family/members", admin_post_member)
    router.add_delete("/accounts/{user_id}/family/members/{member_id}", admin_delete_member)
