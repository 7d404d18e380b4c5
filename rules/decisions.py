"""Decisions are values.

Every check in ``rules`` answers with :class:`Refuse` (or raises :class:`Refused`, which
carries one) when a request must not go upstream.  A :class:`Reason` names *why*; each
dialect turns a reason into its own error code and envelope in exactly one place
(``gateway/dialects/*.py``), so the reason list here is the complete vocabulary of refusals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.Enum):
    """Why a request was refused.  ``status`` is the HTTP status every dialect uses."""

    # Input
    BAD_REQUEST = "bad_request"  # malformed body, wrong types, bad path, duplicate credentials
    BAD_FORWARDED = "bad_forwarded"  # trusted proxy with no (or a malformed) forwarded header
    BODY_TOO_LARGE = "body_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"  # request head over server.max_header_bytes
    HTTP_VERSION_NOT_SUPPORTED = "http_version_not_supported"  # only HTTP/1.0 and 1.1
    EXPECTATION_FAILED = "expectation_failed"  # an Expect other than 100-continue
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # Identity
    INVALID_TOKEN = "invalid_token"  # missing, unknown, expired, revoked or invalidated
    INVALID_CREDENTIALS = "invalid_credentials"  # login with a bad api_key / api_secret
    # Static IP and session binding (SPEC §5 steps 2-4) and token restrictions (SPEC §9)
    IP_NOT_REGISTERED = "ip_not_registered"
    SESSION_IP_MISMATCH = "session_ip_mismatch"
    SLOT_TAKEN = "slot_taken"
    CIDR_NOT_ALLOWED = "cidr_not_allowed"
    READ_ONLY_TOKEN = "read_only_token"
    FORBIDDEN = "forbidden"
    FOREIGN_ORDER = "foreign_order"
    # Registry (SPEC §4)
    PRIMARY_IP_MISSING = "primary_ip_missing"  # UDAPI1182
    INVALID_IP = "invalid_ip"  # UDAPI1183
    SAME_IPS = "same_ips"  # UDAPI1184
    CHANGE_TOO_SOON = "change_too_soon"  # UDAPI1185
    CONCURRENT_UPDATE = "concurrent_update"  # UDAPI1186
    IP_CHANGE_NOT_PERMITTED = "ip_change_not_permitted"  # UDAPI1179
    IP_TAKEN = "ip_taken"  # registered by an account outside the caller's family
    CONFLICT = "conflict"  # one-per-account exists, idempotent request in flight, ...
    # Orders (SPEC §6, §10)
    LTP_UNAVAILABLE = "ltp_unavailable"  # no, stale or unknown-instrument LTP for a MARKET
    MARKET_REJECTED = "market_rejected"  # rules.market_orders = "reject"
    UNKNOWN_ORDER = "unknown_order"  # MARKET modify of an order the gateway did not place
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"  # same Idempotency-Key, different body
    TOO_MANY_ORDERS = "too_many_orders"  # one request carries more orders than the limit
    # Rate (SPEC §7)
    RATE_LIMITED = "rate_limited"
    # Dependencies (SPEC §10, §12)
    STORE_UNAVAILABLE = "store_unavailable"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # connect failed before a byte was sent
    UPSTREAM_FAILED = "upstream_failed"  # failed after the request was sent: outcome unknown
    UPSTREAM_TIMEOUT = "upstream_timeout"  # timed out after sending: outcome unknown
    # The last resort: a failure the gateway did not foresee (a bug), never a decision
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS: dict[Reason, int] = {
    Reason.BAD_REQUEST: 400,
    Reason.BAD_FORWARDED: 400,
    Reason.BODY_TOO_LARGE: 413,
    Reason.HEADERS_TOO_LARGE: 431,
    Reason.HTTP_VERSION_NOT_SUPPORTED: 505,
    Reason.EXPECTATION_FAILED: 417,
    Reason.NOT_FOUND: 404,
    Reason.METHOD_NOT_ALLOWED: 405,
    Reason.INVALID_TOKEN: 401,
    Reason.INVALID_CREDENTIALS: 401,
    Reason.IP_NOT_REGISTERED: 403,
    Reason.SESSION_IP_MISMATCH: 403,
    Reason.SLOT_TAKEN: 403,
    Reason.CIDR_NOT_ALLOWED: 403,
    Reason.READ_ONLY_TOKEN: 403,
    Reason.FORBIDDEN: 403,
    Reason.FOREIGN_ORDER: 403,
    Reason.PRIMARY_IP_MISSING: 400,
    Reason.INVALID_IP: 400,
    Reason.SAME_IPS: 400,
    Reason.CHANGE_TOO_SOON: 400,
    Reason.CONCURRENT_UPDATE: 409,
    Reason.IP_CHANGE_NOT_PERMITTED: 403,
    Reason.IP_TAKEN: 409,
    Reason.CONFLICT: 409,
    Reason.LTP_UNAVAILABLE: 422,
    Reason.MARKET_REJECTED: 422,
    Reason.UNKNOWN_ORDER: 422,
    Reason.IDEMPOTENCY_MISMATCH: 422,
    Reason.TOO_MANY_ORDERS: 422,
    Reason.RATE_LIMITED: 429,
    Reason.STORE_UNAVAILABLE: 503,
    Reason.UPSTREAM_UNAVAILABLE: 503,
    Reason.UPSTREAM_FAILED: 502,
    Reason.UPSTREAM_TIMEOUT: 504,
    Reason.INTERNAL_ERROR: 500,
}


@dataclass(frozen=True, slots=True)
class Refuse:
    """A request that must not go upstream: why, and a message a person can act on."""

    reason: Reason
    message: str
    retry_after: float | None = None

    @property
    def status(self) -> int:
        return self.reason.status


class Refused(Exception):
    """Raised where a refusal ends a parse or a check early; carries the :class:`Refuse`."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.refusal = Refuse(reason, message, retry_after)


def contended(subject: str) -> Refused:
    """A write whose facts kept moving under it between its reads and its commits."""
    return Refused(
        Reason.CONCURRENT_UPDATE,
        f"{subject} kept changing while this request was decided; try again",
    )
