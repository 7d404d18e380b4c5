"""``GET``/``PUT /v2/user/ip``: the account's static IPs (SPEC §4), in Upstox's shape and codes.

A PUT is decided by ``rules.registry`` on a fresh read of the registration and committed by
the store only if the registration's version has not moved meanwhile: of two concurrent
PUTs exactly one wins and the other gets UDAPI1186 and changes nothing.  Any change (the
first registration included) invalidates every session and token of the account and its
family members before the answer is sent.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused
from rules.registry import Registration, check_ip_commit, decide_ip_change, parse_ip_update
from rules.sessions import check_live
from rules.types import CredentialKind

from ..edge import identify
from ..services import SERVICES, Services
from ..stores.base import Account
from .common import any_token, authenticated, json_body, json_response, server_time


async def ip_view(
    services: Services, account: Account, registration: Registration
) -> dict[str, Any]:
    tz = services.config.rules.timezone
    data: dict[str, Any] = {
        "user_id": account.user_id,
        "primary_ip": None if registration.primary is None else str(registration.primary),
        "secondary_ip": None if registration.secondary is None else str(registration.secondary),
        "primary_ip_updated_at": server_time(registration.primary_updated_at, tz),
        "secondary_ip_updated_at": server_time(registration.secondary_updated_at, tz),
    }
    if account.parent_id is None:
        members = await services.store.family_members(account.user_id)
        if members:
            listed = [{"user_id": m.user_id, "name": m.name} for m in members]
            data["primary_ip_family_members"] = listed if registration.primary else []
            data["secondary_ip_family_members"] = listed if registration.secondary else []
    return data


async def get_ip(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    account = snapshot.account
    registration = await services.store.get_registration(account.parent_id or account.user_id)
    return json_response(
        {"status": "success", "data": await ip_view(services, account, registration)}
    )


async def put_ip(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    # Only a login session changes IPs, so every token is refused here with Upstox's UDAPI1179
    # (SPEC §4), before the analytics scope check would call the token read-only instead.
    snapshot = await identify(services.store, any_token(request.headers))
    check_live(snapshot.credential, now=services.clock.now())
    account = snapshot.account
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(
            Reason.IP_CHANGE_NOT_PERMITTED,
            "static IPs can only be changed from a login session, not with a token",
        )
    if account.parent_id is not None:
        raise Refused(
            Reason.IP_CHANGE_NOT_PERMITTED,
            f"{account.user_id} is a member of {account.parent_id}'s family; only the family's"
            " parent account can change the static IPs",
        )
    rules = services.config.rules
    update = parse_ip_update(await json_body(request), public_only=rules.public_ips_only)
    current = await services.store.get_registration(account.user_id)
    new = decide_ip_change(
        current, update, now=services.clock.now(), policy=rules.ip_change, tz=rules.timezone
    )
    if new is not None:
        check_ip_commit(
            await services.store.apply_ip_change(
                account.user_id, new, expected_version=current.version
            )
        )
    data = await ip_view(services, account, new or current)
    data["access_tokens_invalidated"] = new is not None
    return json_response({"status": "success", "data": data})
