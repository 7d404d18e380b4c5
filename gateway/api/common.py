"""Shared pieces of the gateway's own endpoints: answers, auth from any dialect, times.

Handlers only raise; ``gateway/errors.py`` renders refusals in the envelope of the path."""

from __future__ import annotations

import secrets
from datetime import datetime, tzinfo
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from rules.analytics import default_table
from rules.decisions import Reason, Refused
from rules.sessions import Credential, check_live
from rules.tokens import check_scope
from rules.types import CredentialKind, IPAddress, IPNetwork

from ..codec import decode_json, encode_json
from ..dialects.base import Token, bearer, single_header
from ..edge import identify, read_body, request_client_ip
from ..services import SERVICES, Services
from ..stores.base import Account, Snapshot


def new_credential(
    *,
    user_id: str,
    kind: CredentialKind,
    created_ip: IPAddress,
    created_at: datetime,
    expires_at: datetime,
    slot: str | None = None,
    allowed_cidrs: tuple[IPNetwork, ...] = (),
) -> tuple[str, Credential]:
    """A fresh bearer secret (256 random bits, shown once, stored only as its hash) and the
    credential it unlocks."""
    credential = Credential(
        session_id=secrets.token_hex(16),
        user_id=user_id,
        kind=kind,
        created_ip=created_ip,
        created_at=created_at,
        expires_at=expires_at,
        slot=slot,
        allowed_cidrs=allowed_cidrs,
    )
    return secrets.token_urlsafe(32), credential


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode_json(data), content_type="application/json")


def any_token(headers: CIMultiDictProxy[str]) -> Token:
    """A login from any dialect: kotak's ``Auth`` + ``Sid``, else ``Authorization: Bearer``."""
    auth = single_header(headers, "Auth")
    if auth is not None:
        return Token(auth.strip(), single_header(headers, "Sid"))
    return bearer(headers)


async def authenticated(request: web.Request) -> tuple[Services, Snapshot]:
    services = request.app[SERVICES]
    snapshot = await identify(services.store, any_token(request.headers))
    credential = check_live(snapshot.credential, now=services.clock.now())
    if credential.kind is not CredentialKind.LOGIN:
        check_scope(
            credential,
            method=request.method,
            path=request.path,
            client_ip=request_client_ip(request, services),
            registered=snapshot.registration.ips,
            table=default_table(),
        )
    return services, snapshot


async def account_or_404(services: Services, user_id: str) -> Account:
    account = await services.store.get_account(user_id)
    if account is None:
        raise Refused(Reason.NOT_FOUND, f"no account {user_id!r}")
    return account


async def json_body(request: web.Request) -> Any:
    services = request.app[SERVICES]
    return decode_json(await read_body(request, services.config.server.max_body_bytes))


def server_time(value: datetime | None, tz: tzinfo) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in rules.timezone (SPEC §4)."""
    return None if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
