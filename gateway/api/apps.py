"""API apps (SPEC §9): the key and secret an account logs in with (``POST /gateway/v1/session``).

Any account, a family parent or a member, creates its own apps from its own login session
(``POST /gateway/v1/apps``); the operator creates them for any account
(``POST /admin/v1/accounts/{user_id}/apps``).  The secret is 256 random bits, shown once in
the answer and stored only as its hash.  A token (API or analytics) creates no app: an app
mints login sessions, which would let a read-only or allowlisted token outgrow itself.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused
from rules.types import CredentialKind

from ..codec import decode_json
from ..edge import read_body
from ..services import Services
from ..stores.base import App
from .common import account_or_404, authenticated, json_response
from .session import secret_hash


async def new_app(services: Services, user_id: str) -> tuple[App, str]:
    """A new app of ``user_id`` (404 when there is no such account) and its secret."""
    await account_or_404(services, user_id)
    secret = secrets.token_urlsafe(32)
    app = App(
        api_key=secrets.token_hex(16),
        user_id=user_id,
        secret_hash=secret_hash(secret),
        created_at=services.clock.now(),
    )
    await services.store.create_app(app)
    return app, secret


def app_view(app: App, secret: str) -> dict[str, Any]:
    return {"api_key": app.api_key, "api_secret": secret, "user_id": app.user_id}


async def create_own_app(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        raise Refused(Reason.FORBIDDEN, "apps are created from a login session, not with a token")
    body = await read_body(request, services.config.server.max_body_bytes)
    if body.strip() and decode_json(body) != {}:
        raise Refused(Reason.BAD_REQUEST, "POST /gateway/v1/apps takes no body (or {})")
    app, secret = await new_app(services, snapshot.account.user_id)
    return json_response(app_view(app, secret), 201)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/gateway/v1/apps", create_own_app)
