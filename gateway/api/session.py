"""Sessions (SPEC §5): login with an API app's key and secret, from any IP; logout.

A login records the IP it came from.  When that IP is one of the account's effective
registered IPs, the new session takes that IP's order slot: older sessions from the same IP
keep their read routes but lose order rights.  Login itself has no IP validation.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused
from rules.sessions import Credential, session_expiry, slot_for
from rules.types import CredentialKind, IPAddress

from ..codec import parse_form
from ..edge import read_body, request_client_ip
from ..services import SERVICES, Services, token_hash
from ..stores.base import Account
from .common import (
    authenticated,
    json_body,
    json_response,
    new_credential,
)


def secret_hash(secret: str) -> str:
    return token_hash(secret)


async def login(
    services: Services,
    api_key: object,
    api_secret: object,
    client_ip: IPAddress,
    *,
    console: bool = False,
) -> tuple[str, Credential]:
    if not isinstance(api_key, str) or not isinstance(api_secret, str) or not api_key:
        raise Refused(Reason.BAD_REQUEST, "api_key and api_secret must be strings")
    store = services.store
    app = await store.get_app(api_key)
    if app is None or not hmac.compare_digest(app.secret_hash, secret_hash(api_secret)):
        raise Refused(Reason.INVALID_CREDENTIALS, "unknown api_key or wrong api_secret")
    account = await store.get_account(app.user_id)
    if account is None:
        raise Refused(Reason.INVALID_CREDENTIALS, "the app's account no longer exists")
    return await open_session(services, account, client_ip, console=console)


async def open_session(
    services: Services, account: Account, client_ip: IPAddress, *, console: bool = False
) -> tuple[str, Credential]:
    """A login session for the account from ``client_ip`` (SPEC §5): it takes that IP's order
    slot when the IP is registered (a console session never does), and ends at the daily
    logout.  Shared by the gateway's login and the brokers' relayed logins."""
    store = services.store
    registration = await store.get_registration(account.parent_id or account.user_id)
    now = services.clock.now()
    rules = services.config.rules
    token, credential = new_credential(
        user_id=account.user_id,
        kind=CredentialKind.LOGIN,
        created_ip=client_ip,
        created_at=now,
        expires_at=session_expiry(now, logout=rules.session_logout, tz=rules.timezone),
        slot=slot_for(client_ip, registration, console=console),
    )
    await store.create_credential(credential, token_hash(token))
    return token, credential


def session_view(token: str, credential: Credential) -> dict[str, Any]:
    return {
        "access_token": token,
        "session_id": credential.session_id,
        "user_id": credential.user_id,
        "created_ip": str(credential.created_ip),
        "slot": credential.slot,
        "order_capable": credential.slot is not None,
        "expires_at": credential.expires_at.isoformat(),
    }


async def create_session(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    client_ip = request_client_ip(request, services)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"api_key": …, "api_secret": …}')
    # The web console logs in with "console": true: its session never takes an order slot,
    # so opening the console never takes order rights from a strategy on the same IP.
    console = body.get("console", False)
    if not isinstance(console, bool):
        raise Refused(Reason.BAD_REQUEST, '"console" must be true or false')
    token, credential = await login(
        services, body.get("api_key"), body.get("api_secret"), client_ip, console=console
    )
    return json_response({"status": "success", "data": session_view(token, credential)})


async def delete_session(request: web.Request) -> web.StreamResponse:
    services, snapshot = await authenticated(request)
    if snapshot.credential.kind is not CredentialKind.LOGIN:
        # tokens are revoked where they are managed, and only from a login session
        raise Refused(Reason.FORBIDDEN, "logout ends a login session; revoke tokens instead")
    await services.store.revoke_credential(snapshot.credential.session_id)
    return json_response(
        {"status": "success", "data": {"session_id": snapshot.credential.session_id}}
    )


async def upstox_logout(request: web.Request) -> web.StreamResponse:
    """Upstox's ``DELETE /v2/logout`` (``LoginApi.logout``) ends the gateway session that sent
    it, as ``DELETE /gateway/v1/session`` does, answered in Upstox's shape: forwarding it would
    end nothing here, and behind a real broker it would end the broker's session instead."""
    await delete_session(request)
    return json_response({"status": "success", "data": True})


async def upstox_token(request: web.Request) -> web.StreamResponse:
    """Upstox's ``POST /v2/login/authorization/token``: client_id/client_secret are the app's
    api_key/api_secret, so the Upstox SDK's LoginApi.token logs in unchanged."""
    services = request.app[SERVICES]
    client_ip = request_client_ip(request, services)
    form = parse_form(await read_body(request, services.config.server.max_body_bytes))
    fields = {}
    for name in ("client_id", "client_secret"):
        values = [value for key, value in form if key == name]
        if len(values) != 1:
            raise Refused(Reason.BAD_REQUEST, f"{name} is required once")
        fields[name] = values[0]
    token, credential = await login(
        services, fields["client_id"], fields["client_secret"], client_ip
    )
    account = await services.store.get_account(credential.user_id)
    return json_response(
        {
            "email": None,
            "exchanges": ["NSE", "NFO", "BSE", "BFO", "MCX"],
            "products": ["D", "I", "MTF"],
            "broker": "UPSTOX",
            "user_id": credential.user_id,
            "user_name": account.name if account else credential.user_id,
            "order_types": ["LIMIT", "SL", "MARKET", "SL-M"],
            "user_type": "individual",
            "poa": False,
            "is_active": True,
            "access_token": token,
            "extended_token": None,
        }
    )
