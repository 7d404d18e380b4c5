"""The paper broker playing a real broker (SPEC §14): its own broker accounts with their
registered static IPs, both login flows in the brokers' shapes, sessions bound to the address
they were created from, and the brokers' own refusals for requests from anywhere else.

Admin routes (never recorded):
- ``PUT /paper/accounts/{ucc}`` ``{"static_ips": [...], "mobile_number", "totp", "mpin",
  "api_key", "api_secret", "name"}``: registers (replaces) a broker account; every field but
  ``static_ips`` is optional, and a login step whose secret is unset accepts any value;
- ``GET /paper/accounts``: the accounts and their live sessions (addresses, never tokens);
- ``POST /paper/accounts/{ucc}/code``: a one-time Upstox authorization code, as the OAuth
  dialog would redirect with.

Logins (shapes from ``neo_api_client`` 3.0.9 ``services/totp.py`` and ``upstox_client``
``LoginApi.token`` / ``TokenResponse``):
- kotak ``POST /login/1.0/tradeApiLogin`` (``Authorization``: consumer key, JSON
  ``{"mobileNumber", "ucc", "totp"}``) → ``{"data": {"token", "sid", "ucc", "kType": "View",
  …}}``; ``POST /login/1.0/tradeApiValidate`` (``sid``, ``Auth``: view token, JSON
  ``{"mpin"}``) → ``{"data": {"token", "sid", "rid", "baseUrl", "kType": "Trade", …}}``.
  No ``dataCenter``: given one, the client would ask Kotak's config service on the internet.
- upstox ``POST /v2/login/authorization/token`` (form ``code``, ``client_id``,
  ``client_secret``, ``redirect_uri``, ``grant_type``) → the flat ``TokenResponse``.

A request carrying the gateway's ``X-Gateway-User-Id`` is the gateway speaking for itself and
passes as before; so does every request while no broker account is registered (the paper
broker then never checks credentials, as it always has).  Otherwise a kotak request needs a
trade session's ``Auth``/``Sid`` sent from the address that session was created on
(``100008`` / ``1037``), and an upstox request a broker access token sent from one of the
account's registered static IPs (``UDAPI100050`` / ``UDAPI1154``).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

from gateway.paper.broker_state import BrokerAccount, Brokerage, BrokerSession
from gateway.paper.common import USER_HEADER, json_response, received, state

KOTAK_UNAUTHORIZED = {"stCode": 100008, "errMsg": "unauthorized", "stat": "Not_Ok"}
KOTAK_IP_MISMATCH = {
    "stCode": 1037,
    "errMsg": "session ip doesnt match with reqest ip",  # sic: Kotak's spelling
    "stat": "Not_Ok",
}
UPSTOX_BAD_TOKEN = "UDAPI100050"  # noqa: S105 - an error code, not a secret
UPSTOX_STATIC_IP = "UDAPI1154"


def _brokerage(request: web.Request) -> Brokerage:
    return state(request).brokerage


def _kotak_error(code: str, message: str, status: int) -> web.Response:
    # the shape neo_api_client documents for the login service's refusals
    return json_response({"error": [{"code": code, "message": message}]}, status)


def _upstox_error(code: str, message: str, status: int) -> web.Response:
    error = {"errorCode": code, "message": message, "propertyPath": None, "invalidValue": None}
    return json_response(
        {"status": "error", "errors": [{**error, "error_code": code, "property_path": None}]},
        status,
    )


def _matches(expected: str | None, given: object) -> bool:
    return expected is None or (isinstance(given, str) and secrets.compare_digest(expected, given))


# admin -------------------------------------------------------------------------------------


def _optional(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


async def put_account(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
        if not isinstance(body, dict):
            raise ValueError("the body must be an object")
        ips = body.get("static_ips")
        if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
            raise ValueError("static_ips must be a list of addresses")
        ucc = request.match_info["ucc"]
        account = BrokerAccount(
            ucc=ucc,
            static_ips=frozenset(ips),
            name=_optional(body, "name") or ucc,
            mobile_number=_optional(body, "mobile_number"),
            totp=_optional(body, "totp"),
            mpin=_optional(body, "mpin"),
            api_key=_optional(body, "api_key"),
            api_secret=_optional(body, "api_secret"),
        )
    except (orjson.JSONDecodeError, ValueError) as exc:
        return json_response({"error": "INVALID_ACCOUNT", "message": str(exc)}, 400)
    _brokerage(request).accounts[account.ucc] = account
    return web.Response(status=204)


async def list_accounts(request: web.Request) -> web.Response:
    brokerage = _brokerage(request)
    return json_response(
        {
            "accounts": [
                {
                    "ucc": a.ucc,
                    "static_ips": sorted(a.static_ips),
                    "sessions": [
                        {"dialect": s.dialect, "kind": s.kind, "ip": s.ip}
                        for s in brokerage.sessions.values()
                        if s.ucc == a.ucc
                    ],
                }
                for a in brokerage.accounts.values()
            ]
        }
    )


async def new_code(request: web.Request) -> web.Response:
    brokerage = _brokerage(request)
    ucc = request.match_info["ucc"]
    if ucc not in brokerage.accounts:
        return json_response({"error": "NOT_FOUND", "message": f"no broker account {ucc}"}, 404)
    code = secrets.token_urlsafe(6)
    brokerage.codes[code] = ucc
    return json_response({"code": code})


# kotak login -------------------------------------------------------------------------------


def _json_body(request: web.Request) -> dict[str, Any]:
    got = received(request)
    return got.body if got.parsed and isinstance(got.body, dict) else {}


async def kotak_login(request: web.Request) -> web.Response:
    brokerage = _brokerage(request)
    body = _json_body(request)
    account = brokerage.accounts.get(str(body.get("ucc")))
    if account is None or not _matches(account.mobile_number, body.get("mobileNumber")):
        return _kotak_error("401", "Invalid ucc or mobile number", 401)
    if not _matches(account.totp, body.get("totp")):
        return _kotak_error("401", "Invalid TOTP", 401)
    sid = secrets.token_hex(8)
    token = brokerage.open(BrokerSession(account.ucc, "kotak", "view", request.remote or "", sid))
    return json_response(
        {
            "data": {
                "token": token,
                "sid": sid,
                "ucc": account.ucc,
                "greetingName": account.name,
                "kType": "View",
                "status": "success",
            }
        }
    )


async def kotak_validate(request: web.Request) -> web.Response:
    brokerage = _brokerage(request)
    view = brokerage.sessions.get(request.headers.get("Auth", ""))
    if view is None or view.kind != "view" or view.sid != request.headers.get("sid"):
        return json_response(KOTAK_UNAUTHORIZED, 401)
    if view.ip != request.remote:
        return json_response(KOTAK_IP_MISMATCH, 401)
    account = brokerage.accounts[view.ucc]
    if not _matches(account.mpin, _json_body(request).get("mpin")):
        return _kotak_error("401", "Invalid MPIN", 401)
    sid = secrets.token_hex(8)
    token = brokerage.open(BrokerSession(account.ucc, "kotak", "trade", view.ip, sid))
    return json_response(
        {
            "data": {
                "token": token,
                "sid": sid,
                "rid": secrets.token_hex(8),
                "ucc": account.ucc,
                "baseUrl": str(request.url.origin()),
                "greetingName": account.name,
                "kType": "Trade",
                "status": "success",
            }
        }
    )


# upstox login ------------------------------------------------------------------------------


async def upstox_token(request: web.Request) -> web.Response:
    brokerage = _brokerage(request)
    form = _json_body(request)  # the recorder decoded the form into a dict
    ucc = brokerage.codes.pop(str(form.get("code")), None)
    account = brokerage.accounts.get(ucc or "")
    if (
        account is None
        or not _matches(account.api_key, form.get("client_id"))
        or not _matches(account.api_secret, form.get("client_secret"))
    ):
        return _upstox_error("UDAPI100057", "Invalid Auth code", 401)
    token = brokerage.open(BrokerSession(account.ucc, "upstox", "access", request.remote or ""))
    return json_response(
        {
            "email": None,
            "exchanges": ["NSE", "NFO", "BSE", "BFO"],
            "products": ["D", "I"],
            "broker": "UPSTOX",
            "user_id": account.ucc,
            "user_name": account.name,
            "order_types": ["LIMIT", "SL", "MARKET", "SL-M"],
            "user_type": "individual",
            "poa": False,
            "is_active": True,
            "access_token": token,
            "extended_token": secrets.token_urlsafe(24),
        }
    )


# the check on every other request ----------------------------------------------------------


def refusal(request: web.Request, dialect: str) -> web.Response | None:
    """The broker's answer to a request it would not serve, or None to serve it."""
    brokerage = _brokerage(request)
    if not brokerage.accounts or USER_HEADER in request.headers:
        return None
    source = request.remote or ""
    if dialect == "kotak":
        session = brokerage.sessions.get(request.headers.get("Auth", ""))
        if session is None or session.kind != "trade" or session.sid != request.headers.get("Sid"):
            return json_response(KOTAK_UNAUTHORIZED, 401)
        if session.ip != source:
            return json_response(KOTAK_IP_MISMATCH, 401)
        return None
    if dialect == "upstox":
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        session = brokerage.sessions.get(token) if scheme.lower() == "bearer" else None
        if session is None or session.dialect != "upstox":
            return _upstox_error(UPSTOX_BAD_TOKEN, "Invalid token used to access API", 401)
        if source not in brokerage.accounts[session.ucc].static_ips:
            return _upstox_error(
                UPSTOX_STATIC_IP,
                f"Request from {source} is not from the static IP registered for this account",
                403,
            )
    return None


LOGIN_PATHS = frozenset(
    {"/login/1.0/tradeApiLogin", "/login/1.0/tradeApiValidate", "/v2/login/authorization/token"}
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_put("/paper/accounts/{ucc}", put_account)
    router.add_get("/paper/accounts", list_accounts)
    router.add_post("/paper/accounts/{ucc}/code", new_code)
    router.add_post("/login/1.0/tradeApiLogin", kotak_login)
    router.add_post("/login/1.0/tradeApiValidate", kotak_validate)
    router.add_post("/v2/login/authorization/token", upstox_token)
