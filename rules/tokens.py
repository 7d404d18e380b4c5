"""API tokens (Paradex model) and the analytics token's lifetime (SPEC §9).

- ``POST /v1/account/tokens`` takes ``name``, ``token_type`` (``jwt`` or ``api_key``),
  ``expiry_duration`` in seconds from now (Paradex: "1 min to 1 year") and optional
  ``allowed_cidrs``.  Both token types are opaque random secrets here; the type is kept as the
  token's ``kind`` and filters ``GET /v1/account/tokens?kind=``.
- Paradex marks ``name``, ``token_type`` and ``expiry_duration`` optional
  (docs.paradex.trade api/prod/token/create-token) without publishing defaults, so an absent
  one takes the gateway's: ``token_type`` ``jwt`` (the page calls the result "the generated
  JWT token"), ``name`` ``API token``, ``expiry_duration`` 30 days (shorter than the 1-year
  maximum: a forgotten token should not outlive a month).  A field sent as ``null`` is not
  absent and is refused.
- ``allowed_cidrs``: at most 50 strict CIDRs (``rules.ip.parse_cidr``); an empty list means no
  restriction of the token's own.  ``PUT …/allowed-cidrs`` replaces the whole list.
- What a token may reach, on every route but order routes (which ``rules.sessions.admit_order``
  decides): an API token only from inside its non-empty allowlist (403); the analytics token
  only GET, and account categories only from a registered IP (``rules.analytics``).
- The analytics token is valid for one calendar year from issue (Upstox: "an expiry period of
  1 year from the date of generation").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules.analytics import CategoryTable, admit_analytics
from rules.decisions import Reason, Refused
from rules.ip import parse_cidrs, show
from rules.sessions import Credential, check_allowlist
from rules.types import CredentialKind, IPAddress, IPNetwork

__all__ = [
    "DEFAULT_EXPIRY_S",
    "DEFAULT_NAME",
    "DEFAULT_TOKEN_TYPE",
    "MAX_EXPIRY_S",
    "MIN_EXPIRY_S",
    "TOKEN_TYPES",
    "TokenRequest",
    "analytics_expiry",
    "check_analytics_free",
    "check_cidrs_replaceable",
    "check_scope",
    "parse_allowed_cidrs",
    "parse_token_request",
]

MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 365 * 24 * 3600
TOKEN_TYPES = frozenset({"jwt", "api_key"})
MAX_NAME = 100
DEFAULT_TOKEN_TYPE = "jwt"  # noqa: S105 - a token kind, not a secret
DEFAULT_NAME = "API token"
DEFAULT_EXPIRY_S = 30 * 24 * 3600
_FIELDS = frozenset({"name", "token_type", "expiry_duration", "allowed_cidrs"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    name: str
    kind: str
    expiry_s: int
    allowed_cidrs: tuple[IPNetwork, ...]


def _json(value: object) -> str:
    """An untrusted value as the client wrote it in JSON, cut short."""
    if isinstance(value, Decimal):
        return str(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return show(value)
    return text if len(text) <= 64 else text[:61] + "..."


def parse_allowed_cidrs(value: object) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list):
        raise Refused(
            Reason.BAD_REQUEST,
            f"allowed_cidrs must be a list of CIDR strings, got {_json(value)}",
        )
    for entry in value:
        if not isinstance(entry, str):
            raise Refused(
                Reason.BAD_REQUEST,
                f"allowed_cidrs entry {_json(entry)} is invalid: expected a string like"
                " '203.0.113.0/24'",
            )
    return parse_cidrs(value)


def parse_token_request(body: Any) -> TokenRequest:
    if not isinstance(body, dict):
        raise Refused(
            Reason.BAD_REQUEST,
            'the body must be {"name"?, "token_type"?, "expiry_duration"?, "allowed_cidrs"?}',
        )
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise Refused(Reason.BAD_REQUEST, f"unknown field(s): {', '.join(unknown)}")
    name = body.get("name", DEFAULT_NAME)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Refused(
            Reason.BAD_REQUEST, f"name must be a non-empty string of at most {MAX_NAME} characters"
        )
    kind = body.get("token_type", DEFAULT_TOKEN_TYPE)
    if not isinstance(kind, str) or kind not in TOKEN_TYPES:  # a list is unhashable
        raise Refused(
            Reason.BAD_REQUEST, f"token_type must be 'jwt' or 'api_key', got {_json(kind)}"
        )
    expiry = body.get("expiry_duration", DEFAULT_EXPIRY_S)
    if (
        not isinstance(expiry, int)
        or isinstance(expiry, bool)
        or not MIN_EXPIRY_S <= expiry <= MAX_EXPIRY_S
    ):
        raise Refused(
            Reason.BAD_REQUEST,
            f"expiry_duration must be whole seconds from {MIN_EXPIRY_S} (1 minute) to"
            f" {MAX_EXPIRY_S} (1 year), got {_json(expiry)}",
        )
    cidrs = parse_allowed_cidrs(body["allowed_cidrs"]) if "allowed_cidrs" in body else ()
    return TokenRequest(name=name, kind=str(kind), expiry_s=expiry, allowed_cidrs=cidrs)


def analytics_expiry(issued_at: datetime) -> datetime:
    """The same instant one calendar year later (29 February → 28 February)."""
    try:
        return issued_at.replace(year=issued_at.year + 1)
    except ValueError:
        return issued_at.replace(year=issued_at.year + 1, day=28)


def check_analytics_free(live: Credential | None, *, now: datetime) -> str | None:
    """One analytics token per account (Upstox): Refused(CONFLICT) while ``live`` (the
    account's unrevoked one) has not expired; else the session id of an expired one, which
    no longer counts and is retired by the new one (None when there is none)."""
    if live is None:
        return None
    if now < live.expires_at:
        raise Refused(
            Reason.CONFLICT,
            "this account already has an analytics token (one per account);"
            " revoke it with DELETE /gateway/v1/analytics-token first",
        )
    return live.session_id


def check_cidrs_replaceable(lookup_id: str, *, live: bool) -> None:
    """An allowlist is replaced only on a live token: a revoked or expired one stays dead
    (Paradex: create a new token instead)."""
    if not live:
        raise Refused(
            Reason.CONFLICT, f"token {lookup_id} is revoked or expired; create a new token"
        )


def check_scope(
    cred: Credential,
    *,
    method: str,
    path: str,
    client_ip: IPAddress,
    registered: frozenset[IPAddress],
    table: CategoryTable,
) -> None:
    if cred.kind is CredentialKind.API_TOKEN:
        check_allowlist(cred, client_ip)
    elif cred.kind is CredentialKind.ANALYTICS:
        admit_analytics(method, path, client_ip=client_ip, registered=registered, table=table)
