"""The login relay (SPEC §14, ``upstream.login_relay = true``): the broker's own login calls,
made by its official client through the gateway, go to the broker from the account's egress
address, so the broker session is born on the static IP the broker checks.

- kotak ``POST /login/1.0/tradeApiLogin`` is relayed from the egress address of the account
  its body's ``ucc`` names (403 when none: the address could only be guessed); its answer
  passes through unchanged, its view token remembered for the second step.
  ``POST /login/1.0/tradeApiValidate`` is relayed from the same address; on success the
  broker's ``token``, ``sid``, the client's ``Authorization`` consumer key and ``baseUrl`` are
  kept as the account's kotak broker session, a gateway session is created from the client's
  IP (SPEC §5), and the broker's answer goes back with the gateway session's ``token`` and
  ``sid`` and ``baseUrl`` = ``server.public_url``.
- upstox ``POST /v2/login/authorization/token`` whose ``client_id`` is no gateway app's api_key
  is relayed by the default route (it names no account, and Upstox checks the address of
  orders, not of logins); the broker's ``access_token`` becomes the account's upstox broker
  session, and the client gets the broker's answer with a gateway session's ``access_token``
  and no ``extended_token``.

The account is the one the broker's answer names (``rules.relay.relay_account``).  A broker
refusal goes back unchanged (status and body) and nothing is kept.  Broker tokens never reach
the client, a log line or the audit log, which records each relayed step without secrets.

The view token of a kotak first step is remembered in this process for five minutes: with
``serve --workers N`` both steps must reach the same worker (one client connection does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web

from rules.decisions import Reason, Refused
from rules.relay import Candidate, relay_account
from rules.sessions import session_expiry
from rules.types import IPAddress

from ..codec import encode_json
from ..edge import read_body, request_client_ip
from ..services import SERVICES, Services, token_hash
from ..stores.base import Account, AuditEntry, BrokerSession, LoginStep, StoreUnavailable
from ..upstream import UpstreamResponse, response_headers
from . import session

KOTAK_LOGIN = "/login/1.0/tradeApiLogin"
KOTAK_VALIDATE = "/login/1.0/tradeApiValidate"
UPSTOX_TOKEN = "/v2/login/authorization/token"  # noqa: S105 - a path, not a secret
# What the official clients send that the broker's login service reads; nothing else goes.
_KOTAK_HEADERS = ("Authorization", "neo-fin-key", "Content-Type", "Accept", "sid", "Auth")
_UPSTOX_HEADERS = ("Content-Type", "Accept", "Api-Version")
PENDING_S = 300


class Relay:
    def __init__(self, services: Services) -> None:
        self.services = services


RELAY = web.AppKey("relay", Relay)


def _passed(upstream: UpstreamResponse) -> web.Response:
    return web.Response(
        status=upstream.status, body=upstream.body, headers=response_headers(upstream.headers)
    )


def _headers(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.headers[name] for name in names if name in request.headers}


def _answer(upstream: UpstreamResponse) -> dict[str, Any] | None:
    """The broker's JSON answer when it is a success, else None (pass it back unchanged)."""
    if not 200 <= upstream.status < 300:
        return None
    try:
        parsed = orjson.loads(upstream.body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def _accounts(services: Services) -> list[Account]:
    # Relayed logins happen once a day per account: a scan is cheaper than another index.
    return list(await services.store.list_accounts())


def _effective_egress(account: Account, accounts: list[Account]) -> str | None:
    if account.egress_ip is not None or account.parent_id is None:
        return account.egress_ip
    parent = next((a for a in accounts if a.user_id == account.parent_id), None)
    return None if parent is None else parent.egress_ip


def _named(code: object, accounts: list[Account]) -> Account:
    user_id = relay_account(code, [Candidate(a.user_id, a.broker_user_id) for a in accounts])
    return next(a for a in accounts if a.user_id == user_id)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One relayed login step, as the audit log records it (SPEC §14): once the broker was
    asked, every outcome is on the record, kept or not."""

    services: Services
    step: str
    client_ip: IPAddress
    egress: str | None
    status: int

    def record(self, user_id: str | None, *, kept: bool = False) -> None:
        services = self.services
        services.store.audit(
            AuditEntry.of(
                {
                    "at": services.clock.now().isoformat(),
                    "user_id": user_id,
                    "decision": "relayed_login",
                    "step": self.step,
                    "client_ip": str(self.client_ip),
                    "egress_ip": self.egress,
                    "broker_status": self.status,
                    "broker_session_kept": kept,
                }
            )
        )


async def _gateway_session(
    services: Services, account: Account, client_ip: IPAddress
) -> tuple[str, str]:
    """A gateway login session for the account from the client's IP (SPEC §5)."""
    token, credential = await session.open_session(services, account, client_ip)
    return token, credential.session_id


async def _keep(
    services: Services,
    account: Account,
    dialect: str,
    headers: dict[str, str],
    base_url: str | None,
    egress: str | None,
) -> None:
    registration = await services.store.get_registration(account.parent_id or account.user_id)
    now = services.clock.now()
    rules = services.config.rules
    held = BrokerSession(
        headers=headers,
        since=now,
        expires_at=session_expiry(now, logout=rules.session_logout, tz=rules.timezone),
        base_url=base_url,
        registration_version=registration.version,
        egress_ip=egress,
    )
    await services.store.set_broker_session(account.user_id, dialect, held)


def _public_url(request: web.Request, services: Services) -> str:
    configured = services.config.server.public_url
    return configured.rstrip("/") if configured else str(request.url.origin())


# kotak -------------------------------------------------------------------------------------


async def kotak_login(request: web.Request) -> web.StreamResponse:
    relay = request.app[RELAY]
    services = relay.services
    client_ip = request_client_ip(request, services)
    body = await read_body(request, services.config.server.max_body_bytes)
    try:
        sent = orjson.loads(body)
    except ValueError as exc:
        raise Refused(Reason.BAD_REQUEST, "the body must be JSON with ucc") from exc
    accounts = await _accounts(services)
    account = _named(sent.get("ucc") if isinstance(sent, dict) else None, accounts)
    egress = _effective_egress(account, accounts)
    upstream = await services.upstream.send(
        "kotak",
        "POST",
        KOTAK_LOGIN,
        _headers(request, _KOTAK_HEADERS),
        body,
        egress=egress,
        host="login",
    )
    _Attempt(services, "kotak_login", client_ip, egress, upstream.status).record(account.user_id)
    data = (_answer(upstream) or {}).get("data")
    if isinstance(data, dict) and isinstance(data.get("token"), str):
        # in the store, not this process: the second step may reach another worker
        expires_at = services.clock.now() + timedelta(seconds=PENDING_S)
        step = LoginStep(account.user_id, egress, expires_at)
        try:
            await services.store.hold_login_step(token_hash(data["token"]), step)
        except StoreUnavailable as exc:  # the broker was asked: never "nothing was sent"
            raise Refused(
                Reason.STORE_UNAVAILABLE,
                "the broker answered the first login step, but the gateway's store could not"
                " keep it for the second; log in again",
            ) from exc
    return _passed(upstream)  # its view token only serves the second step


async def kotak_validate(request: web.Request) -> web.StreamResponse:
    relay = request.app[RELAY]
    services = relay.services
    client_ip = request_client_ip(request, services)
    body = await read_body(request, services.config.server.max_body_bytes)
    view = token_hash(request.headers.get("Auth", ""))
    pending = await services.store.login_step(view, now=services.clock.now())
    if pending is None:
        raise Refused(
            Reason.INVALID_TOKEN,
            "no tradeApiLogin through this gateway in the last five minutes sent this Auth",
        )
    upstream = await services.upstream.send(
        "kotak",
        "POST",
        KOTAK_VALIDATE,
        _headers(request, _KOTAK_HEADERS),
        body,
        egress=pending.egress,
        host="login",
    )
    attempt = _Attempt(services, "kotak_validate", client_ip, pending.egress, upstream.status)
    answer = _answer(upstream)
    data = None if answer is None else answer.get("data")
    if answer is None or not isinstance(data, dict) or not isinstance(data.get("token"), str):
        attempt.record(pending.user_id)
        return _passed(upstream)
    try:
        account = _named(data.get("ucc"), await _accounts(services))
        if account.user_id != pending.user_id:
            raise Refused(Reason.FORBIDDEN, "the broker's answer names another account")
    except Refused:
        attempt.record(pending.user_id)
        raise
    headers = {"Auth": data["token"], "Sid": str(data.get("sid", ""))}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]  # the consumer key
    base = data.get("baseUrl")
    await _keep(
        services, account, "kotak", headers, base if isinstance(base, str) else None, pending.egress
    )
    await services.store.drop_login_step(view)
    token, session_id = await _gateway_session(services, account, client_ip)
    attempt.record(account.user_id, kept=True)
    data = {**data, "token": token, "sid": session_id, "baseUrl": _public_url(request, services)}
    return web.Response(
        status=upstream.status,
        body=encode_json({**answer, "data": data}),
        content_type="application/json",
    )


# upstox ------------------------------------------------------------------------------------


async def upstox_token(request: web.Request) -> web.StreamResponse:
    relay = request.app[RELAY]
    services = relay.services
    body = await read_body(request, services.config.server.max_body_bytes)
    form = await request.post()
    client_id = form.get("client_id")
    if not isinstance(client_id, str) or await services.store.get_app(client_id) is not None:
        return await session.upstox_token(request)  # a gateway app: the gateway's own login
    client_ip = request_client_ip(request, services)
    upstream = await services.upstream.send(
        "upstox", "POST", UPSTOX_TOKEN, _headers(request, _UPSTOX_HEADERS), body
    )
    attempt = _Attempt(services, "upstox_token", client_ip, None, upstream.status)
    answer = _answer(upstream)
    if answer is None or not isinstance(answer.get("access_token"), str):
        attempt.record(None)
        return _passed(upstream)
    accounts = await _accounts(services)
    try:
        account = _named(answer.get("user_id"), accounts)
    except Refused:  # a session the broker issued for no account here
        attempt.record(None)
        raise
    bearer = {"Authorization": f"Bearer {answer['access_token']}"}
    await _keep(services, account, "upstox", bearer, None, _effective_egress(account, accounts))
    token, _ = await _gateway_session(services, account, client_ip)
    attempt.record(account.user_id, kept=True)
    answer = {k: v for k, v in answer.items() if k != "extended_token"}
    answer["access_token"] = token
    return web.Response(
        status=upstream.status, body=encode_json(answer), content_type="application/json"
    )


def add_routes(app: web.Application) -> None:
    """The relay's routes when ``upstream.login_relay`` is on; else the gateway's own login."""
    services = app[SERVICES]
    if not services.config.upstream.login_relay:
        app.router.add_post(UPSTOX_TOKEN, session.upstox_token)
        return
    app[RELAY] = Relay(services)
    app.router.add_post(KOTAK_LOGIN, kotak_login)
    app.router.add_post(KOTAK_VALIDATE, kotak_validate)
    app.router.add_post(UPSTOX_TOKEN, upstox_token)
