"""Families (SPEC §9): a parent account and up to 10 member accounts sharing its static IPs.

Kotak Neo and Upstox let up to 11 accounts of one family (self, spouse, dependent children and
parents) trade from one registered static IP; only the parent registers or changes it.  Here:

- nobody joins without consenting: the parent invites (``POST /gateway/v1/family/members``,
  202, the same answer whoever the user id is), and the invitee lists its invitations and
  accepts or declines them with its own login session within 7 days (``rules.family``);
- the parent removes members (``DELETE /gateway/v1/family/members/{id}``); a member cannot
  manage the family, but may leave it (``DELETE`` of its own id); a token changes nothing;
- an account is in at most one family, and a member cannot be the parent of another;
- joining or leaving ends the member's sessions: they were bound to the registration the
  member had, and its effective IPs are now different;
- joining never skips the weekly limit nor frees an address early: the member's own
  registration stays reserved to it (nobody outside the family may register its addresses)
  and its change period keeps running; leaving frees the addresses, not the period;
- sharing IPs gives no access to another member's orders: each member's orders go upstream
  under its own user id, and the pipeline refuses a modify or cancel of another account's
  order (403).

The operator's equivalents (``/admin/v1/accounts/{parent}/family…``) skip the session check
and the invitation: the operator adds a member directly, audited with both user ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused, contended
from rules.family import (
    INVITATION_LIFETIME,
    MAX_MEMBERS,
    JoinFacts,
    check_accept,
    check_invite,
    check_join,
    invitation_live,
)
from rules.types import CredentialKind

from ..services import SERVICES, Services
from ..stores.base import ATTEMPTS, Account, AuditEntry, Commit, Snapshot
from ..stores.roles import Registry
from .common import (
    account_or_404,
    authenticated,
    json_body,
    json_response,
)

__all__ = ["MAX_MEMBERS", "add_routes", "join"]


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


async def _login(request: web.Request, action: str) -> tuple[Services, Snapshot]:
    services, snapshot = await authenticated(request)
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(Reason.FORBIDDEN, f"{action} needs a login session, not a token")
    return services, snapshot


async def join(
    registry: Registry,
    parent_id: str,
    member_id: str,
    *,
    max_members: int = MAX_MEMBERS,
    accepted_at: datetime | None = None,
) -> None:
    """Decide the join in ``rules.family`` and commit it only on the facts it was decided on.

    ``accepted_at``: the invitee accepts the parent's invitation (which must be live then);
    without it the operator adds the member directly."""

    def check(facts: JoinFacts) -> None:
        if accepted_at is None:
            check_join(parent_id, member_id, facts, max_members=max_members)
        else:
            check_accept(parent_id, member_id, facts, now=accepted_at, max_members=max_members)

    for _ in range(ATTEMPTS):
        facts = await registry.join_facts(parent_id, member_id)
        check(facts)
        if await registry.add_family_member(parent_id, member_id, expected=facts) is Commit.DONE:
            return
    raise contended(f"{parent_id}'s family")


async def remove_member(services: Services, parent_id: str, user_id: str) -> dict[str, Any]:
    if not await services.store.remove_family_member(parent_id, user_id):
        raise Refused(Reason.NOT_FOUND, f"{user_id} is not a member of {parent_id}'s family")
    parent = await services.store.get_account(parent_id)
    if parent is None:
        raise Refused(Reason.NOT_FOUND, f"no account {parent_id!r}")
    return await family_view(services, parent)


# The gateway's own API, as the parent ------------------------------------------------------


async def get_family(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    data = await family_view(services, snapshot.account)
    return json_response({"status": "success", "data": data})


async def post_member(request: web.Request) -> web.StreamResponse:
    """An invitation: nothing about the invited account is read or changed, and the answer
    is the same whether it exists, is free or is in a family (SPEC §9)."""
    services, snapshot = await _parent(request)
    parent_id = snapshot.account.user_id
    user_id = member_id(await json_body(request))
    members = await services.store.family_members(parent_id)
    check_invite(parent_id, user_id, members=len(members), max_members=MAX_MEMBERS)
    now = services.clock.now()
    await services.store.invite(parent_id, user_id, at=now)
    data = {
        "user_id": user_id,
        "parent_id": parent_id,
        "invited_at": now.isoformat(),
        "expires_at": (now + INVITATION_LIFETIME).isoformat(),
    }
    return json_response({"status": "success", "data": data}, 202)


async def get_invitations(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    now = services.clock.now()
    listed = [
        {"parent_user_id": i.parent_id, "name": i.name, "invited_at": i.invited_at.isoformat()}
        for i in await services.store.invitations(snapshot.account.user_id)
        if invitation_live(i.invited_at, now=now)
    ]
    return json_response({"status": "success", "data": {"invitations": listed}})


async def accept_invitation(request: web.Request) -> web.StreamResponse:
    services, snapshot = await _login(request, "accepting an invitation")
    user_id = snapshot.account.user_id
    parent_id = request.match_info["parent_user_id"]
    await join(services.store, parent_id, user_id, accepted_at=services.clock.now())
    joined = await services.store.get_account(user_id)
    assert joined is not None
    return json_response({"status": "success", "data": await family_view(services, joined)})


async def decline_invitation(request: web.Request) -> web.StreamResponse:
    services, snapshot = await _login(request, "declining an invitation")
    parent_id = request.match_info["parent_user_id"]
    if not await services.store.drop_invitation(parent_id, snapshot.account.user_id):
        raise Refused(Reason.NOT_FOUND, f"no pending invitation from {parent_id}")
    return json_response({"status": "success", "data": {"declined": parent_id}})


async def delete_member(request: web.Request) -> web.StreamResponse:
    user_id = request.match_info["user_id"]
    services, snapshot = await authenticated(request)
    account = snapshot.account
    if account.parent_id is not None and user_id == account.user_id:
        # A member may always leave: the way out must not depend on the parent (the member
        # then registers its own IPs, when its change period allows).
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


async def admin_get_family(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    return json_response({"status": "success", "data": await family_view(services, account)})


async def admin_post_member(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    parent = await account_or_404(services, request.match_info["user_id"])
    user_id = member_id(await json_body(request))
    await join(services.store, parent.user_id, user_id)
    services.store.audit(
        AuditEntry.of(
            {
                "at": services.clock.now().isoformat(),
                "user_id": user_id,
                "decision": "admin_family_add",
                "parent_user_id": parent.user_id,
            }
        )
    )
    joined = await services.store.get_account(parent.user_id)
    assert joined is not None
    return json_response({"status": "success", "data": await family_view(services, joined)}, 201)


async def admin_delete_member(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    parent = await account_or_404(services, request.match_info["user_id"])
    data = await remove_member(services, parent.user_id, request.match_info["member_id"])
    return json_response({"status": "success", "data": data})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/gateway/v1/family", get_family)
    router.add_post("/gateway/v1/family/members", post_member)
    router.add_delete("/gateway/v1/family/members/{user_id}", delete_member)
    router.add_get("/gateway/v1/family/invitations", get_invitations)
    router.add_post("/gateway/v1/family/invitations/{parent_user_id}/accept", accept_invitation)
    router.add_post("/gateway/v1/family/invitations/{parent_user_id}/decline", decline_invitation)


def add_admin_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/accounts/{user_id}/family", admin_get_family)
    router.add_post("/accounts/{user_id}/family/members", admin_post_member)
    router.add_delete("/accounts/{user_id}/family/members/{member_id}", admin_delete_member)
