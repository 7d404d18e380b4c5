"""API tokens with CIDR allowlists (SPEC §9), modelled on Paradex's ``/v1/account/tokens``.

``expiry_duration`` is in seconds (Paradex: "Duration in seconds from now until expiration (1
min to 1 year)"); timestamps in answers are nanoseconds since the epoch and ``revoked_at`` is 0
while the token is live.  The secret is shown once, in the creation answer; only its hash is
stored.  Anyone authenticated may list the account's tokens; only a login session may create,
revoke or change them (a token cannot widen its own allowlist or mint siblings).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused, contended
from rules.tokens import (
    TOKEN_TYPES,
    check_cidrs_replaceable,
    parse_allowed_cidrs,
    parse_token_request,
)
from rules.types import CredentialKind, IPNetwork

from ..edge import request_client_ip
from ..services import Services, token_hash
from ..stores.base import ATTEMPTS, ApiToken, Snapshot
from ..stores.roles import Tokens
from .common import (
    authenticated,
    json_body,
    json_response,
    new_credential,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nanoseconds(value: datetime | None) -> int:
    return 0 if value is None else (value - _EPOCH) // timedelta(microseconds=1) * 1000


def token_view(token: ApiToken) -> dict[str, Any]:
    return {
        "allowed_cidrs": [str(net) for net in token.allowed_cidrs],
        "created_at": nanoseconds(token.created_at),
        "expiry_at": nanoseconds(token.expiry_at),
        "last_updated_at": nanoseconds(token.last_updated_at),
        "revoked_at": nanoseconds(token.revoked_at),
        "kind": token.kind,
        "lookup_id": token.lookup_id,
        "name": token.name,
        "token_id": token.token_id,
    }


async def login_session(request: web.Request) -> tuple[Services, Snapshot]:
    services, snapshot = await authenticated(request)
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(
            Reason.FORBIDDEN,
            "tokens can only be created, revoked or changed from a login session, not with a token",
        )
    return services, snapshot


async def list_tokens(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    kind = request.query.get("kind")
    if kind is not None and kind not in TOKEN_TYPES:
        raise Refused(Reason.BAD_REQUEST, "kind must be 'jwt' or 'api_key'")
    with_invalid = request.query.get("with_invalid", "false")
    if with_invalid not in ("true", "false"):
        raise Refused(Reason.BAD_REQUEST, "with_invalid must be true or false")
    tokens = await services.store.api_tokens(
        snapshot.account.user_id,
        kind=kind,
        with_invalid=with_invalid == "true",
        now=services.clock.now(),
    )
    return json_response({"results": [token_view(t) for t in tokens]})


async def create_token(request: web.Request) -> web.StreamResponse:
    services, snapshot = await login_session(request)
    wanted = parse_token_request(await json_body(request))
    now = services.clock.now()
    secret, credential = new_credential(
        user_id=snapshot.account.user_id,
        kind=CredentialKind.API_TOKEN,
        created_ip=request_client_ip(request, services),
        created_at=now,
        expires_at=now + timedelta(seconds=wanted.expiry_s),
        allowed_cidrs=wanted.allowed_cidrs,
    )
    token = ApiToken(
        lookup_id=str(uuid.uuid4()),
        token_id=credential.session_id,
        user_id=credential.user_id,
        name=wanted.name,
        kind=wanted.kind,
        allowed_cidrs=wanted.allowed_cidrs,
        created_at=now,
        expiry_at=credential.expires_at,
        last_updated_at=now,
    )
    await services.store.create_api_token(token, credential, token_hash(secret))
    return json_response({"api_token": token_view(token), "token": secret})


async def revoke_token(request: web.Request) -> web.StreamResponse:
    services, snapshot = await login_session(request)
    lookup_id = request.match_info["lookup_id"]
    token = await services.store.revoke_api_token(
        snapshot.account.user_id, lookup_id, now=services.clock.now()
    )
    if token is None:
        raise Refused(Reason.NOT_FOUND, f"no token {lookup_id!r} on this account")
    return json_response(token_view(token))


async def replace_cidrs(request: web.Request) -> web.StreamResponse:
    services, snapshot = await login_session(request)
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) != {"allowed_cidrs"}:
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"allowed_cidrs": [...]}')
    cidrs = parse_allowed_cidrs(body["allowed_cidrs"])
    token = await replace_allowlist(
        services.store,
        snapshot.account.user_id,
        request.match_info["lookup_id"],
        cidrs,
        now=services.clock.now(),
    )
    return json_response(token_view(token))


async def replace_allowlist(
    tokens: Tokens, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
) -> ApiToken:
    """Decide in ``rules.tokens`` on the token as listed; the store writes only while the token
    is still live (revoked meanwhile, it is decided again and refused)."""
    for _ in range(ATTEMPTS):
        listed = await tokens.api_tokens(user_id, kind=None, with_invalid=True, now=now)
        found = next((t for t in listed if t.lookup_id == lookup_id), None)
        if found is None:
            raise Refused(Reason.NOT_FOUND, f"no token {lookup_id!r} on this account")
        check_cidrs_replaceable(lookup_id, live=found.live_at(now))
        token = await tokens.replace_api_token_cidrs(user_id, lookup_id, cidrs, now=now)
        if token is not None:
            return token
    raise contended(f"token {lookup_id}")


async def no_route(request: web.Request) -> web.StreamResponse:
    """The gateway owns /v1/account/tokens: nothing under it is forwarded upstream, and
    what is not a route is said only to a live credential (issue 17)."""
    await authenticated(request)
    raise Refused(Reason.NOT_FOUND, f"no route {request.method} {request.path}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/account/tokens", list_tokens)
    router.add_post("/v1/account/tokens", create_token)
    router.add_delete("/v1/account/tokens/{lookup_id}", revoke_token)
    router.add_put("/v1/account/tokens/{lookup_id}/allowed-cidrs", replace_cidrs)
    router.add_route("*", "/v1/account/tokens{tail:(/.*)?}", no_route)
