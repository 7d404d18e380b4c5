"""The analytics token (SPEC §9), modelled on Upstox's: read-only, valid for one year, one per
account.  Issued and revoked from a login session; a second one is refused (409) until the
first is revoked or has expired.
"""

from __future__ import annotations

from aiohttp import web

from rules.decisions import Reason, Refused, contended
from rules.sessions import Credential
from rules.tokens import analytics_expiry, check_analytics_free
from rules.types import CredentialKind

from ..edge import request_client_ip
from ..services import token_hash
from ..stores.base import ATTEMPTS, Commit
from ..stores.roles import Tokens
from .common import json_response, new_credential
from .tokens import login_session


async def issue(tokens: Tokens, credential: Credential, hashed: str) -> None:
    """Decide in ``rules.tokens`` (one per account) and commit only on the facts decided on."""
    for _ in range(ATTEMPTS):
        live = await tokens.live_analytics_token(credential.user_id)
        retire = check_analytics_free(live, now=credential.created_at)
        if await tokens.create_analytics_token(credential, hashed, retire=retire) is Commit.DONE:
            return
    raise contended("the account's analytics token")


async def create_analytics_token(request: web.Request) -> web.StreamResponse:
    services, snapshot = await login_session(request)
    now = services.clock.now()
    secret, credential = new_credential(
        user_id=snapshot.account.user_id,
        kind=CredentialKind.ANALYTICS,
        created_ip=request_client_ip(request, services),
        created_at=now,
        expires_at=analytics_expiry(now),
    )
    await issue(services.store, credential, token_hash(secret))
    return json_response(
        {
            "status": "success",
            "data": {
                "access_token": secret,
                "token_id": credential.session_id,
                "user_id": credential.user_id,
                "created_at": now.isoformat(),
                "expires_at": credential.expires_at.isoformat(),
            },
        }
    )


async def delete_analytics_token(request: web.Request) -> web.StreamResponse:
    services, snapshot = await login_session(request)
    if not await services.store.revoke_analytics_token(snapshot.account.user_id):
        raise Refused(Reason.NOT_FOUND, "this account has no analytics token")
    return json_response({"status": "success", "data": {"revoked": True}})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/gateway/v1/analytics-token", create_analytics_token)
    router.add_delete("/gateway/v1/analytics-token", delete_analytics_token)
