from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from rules.analytics import default_table
from rules.decisions import Reason, Refused
from rules.sessions import Credential
from rules.tokens import (
    DEFAULT_EXPIRY_S,
    DEFAULT_NAME,
    DEFAULT_TOKEN_TYPE,
    MAX_EXPIRY_S,
    MIN_EXPIRY_S,
    TokenRequest,
    analytics_expiry,
    check_analytics_free,
    check_cidrs_replaceable,
    check_scope,
    parse_allowed_cidrs,
    parse_token_request,
)
from rules.types import CredentialKind, IPAddress

GOOD: dict[str, Any] = {"name": "bot", "token_type": "api_key", "expiry_duration": 86400}


def test_a_minimal_request() -> None:
    assert parse_token_request(GOOD) == TokenRequest("bot", "api_key", 86400, ())


@pytest.mark.parametrize("kind", ["jwt", "api_key"])
@pytest.mark.parametrize("expiry", [MIN_EXPIRY_S, MAX_EXPIRY_S])
def test_bounds_and_kinds(kind: str, expiry: int) -> None:
    request = parse_token_request({**GOOD, "token_type": kind, "expiry_duration": expiry})
    assert (request.kind, request.expiry_s) == (kind, expiry)


def test_cidrs_at_creation() -> None:
    request = parse_token_request(
        {**GOOD, "allowed_cidrs": ["127.0.0.2/32", "2001:db8::/32", "127.0.0.2/32"]}
    )
    assert request.allowed_cidrs == (ip_network("127.0.0.2/32"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"name": ""}, "name must be"),
        ({"name": "   "}, "name must be"),
        ({"name": "x" * 101}, "name must be"),
        ({"name": 7}, "name must be"),
        ({"token_type": "session"}, 'got "session"'),
        ({"token_type": None}, "got null"),
        ({"token_type": ["jwt"]}, 'got ["jwt"]'),  # unhashable: found by tests/fuzz
        ({"expiry_duration": MIN_EXPIRY_S - 1}, "got 59"),
        ({"expiry_duration": MAX_EXPIRY_S + 1}, f"got {MAX_EXPIRY_S + 1}"),
        ({"expiry_duration": True}, "got true"),
        ({"expiry_duration": "3600"}, 'got "3600"'),
        ({"expiry_duration": Decimal("3600.5")}, "got 3600.5"),
        ({"expiry_duration": [Decimal("1.5")]}, "got [Decimal('1.5')]"),
        ({"expiry_duration": "x" * 100}, '"xxxxxxxx'),
        ({"allowed_cidrs": None}, "got null"),
        ({"allowed_cidrs": "127.0.0.1/32"}, 'got "127.0.0.1/32"'),
        ({"allowed_cidrs": [None]}, "entry null"),
        ({"allowed_cidrs": [42]}, "entry 42"),
        ({"allowed_cidrs": ["127.0.0.1/24"]}, "'127.0.0.1/24'"),
        ({"allowed_cidrs": ["10.0.0.0/255.255.255.0"]}, "'10.0.0.0/255.255.255.0'"),
        ({"allowed_cidrs": ["010.0.0.0/8"]}, "'010.0.0.0/8'"),
        ({"allowed_cidrs": ["fe80::/10%eth0"]}, "'fe80::/10%eth0'"),
        ({"allowed_cidrs": [f"10.0.{i}.0/24" for i in range(51)]}, "51 entries"),
        ({"extra": 1}, "unknown field(s): extra"),
    ],
)
def test_refused(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_token_request({**GOOD, **changes})
    assert refused.value.refusal.reason is Reason.BAD_REQUEST
    assert named in refused.value.refusal.message


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_the_body_is_an_object(body: object) -> None:
    with pytest.raises(Refused, match="the body must be"):
        parse_token_request(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, TokenRequest(DEFAULT_NAME, DEFAULT_TOKEN_TYPE, DEFAULT_EXPIRY_S, ())),
        ({"token_type": "jwt", "expiry_duration": 60}, TokenRequest(DEFAULT_NAME, "jwt", 60, ())),
        ({"name": "bot"}, TokenRequest("bot", "jwt", 30 * 24 * 3600, ())),
        ({"token_type": "api_key"}, TokenRequest("API token", "api_key", DEFAULT_EXPIRY_S, ())),
    ],
)
def test_absent_fields_take_the_defaults(body: dict[str, Any], expected: TokenRequest) -> None:
    # Paradex marks name, token_type and expiry_duration optional (SPEC §9)
    assert parse_token_request(body) == expected


def test_a_null_field_is_not_an_absent_one() -> None:
    with pytest.raises(Refused, match="name must be"):
        parse_token_request({"name": None})


def test_replacement_lists() -> None:
    assert parse_allowed_cidrs([]) == ()
    assert parse_allowed_cidrs(["::1/128"]) == (ip_network("::1/128"),)


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (datetime(2026, 11, 16, 4, 0, tzinfo=UTC), datetime(2027, 11, 16, 4, 0, tzinfo=UTC)),
        (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), datetime(2029, 2, 28, 12, 0, tzinfo=UTC)),
    ],
)
def test_analytics_tokens_live_one_calendar_year(issued: datetime, expires: datetime) -> None:
    assert analytics_expiry(issued) == expires


def _cred(kind: CredentialKind, cidrs: tuple[str, ...] = ()) -> Credential:
    return Credential(
        session_id="s",
        user_id="U1",
        kind=kind,
        created_ip=ip_address("127.0.0.2"),
        created_at=datetime(2026, 11, 16, tzinfo=UTC),
        expires_at=datetime(2027, 11, 16, tzinfo=UTC),
        allowed_cidrs=tuple(ip_network(c) for c in cidrs),
    )


REGISTERED: frozenset[IPAddress] = frozenset({ip_address("127.0.0.2")})


@pytest.mark.parametrize(
    ("cred", "method", "path", "ip", "reason"),
    [
        (_cred(CredentialKind.LOGIN), "POST", "/v2/user/profile", "127.0.0.9", None),
        (_cred(CredentialKind.API_TOKEN), "POST", "/v1/anything", "127.0.0.9", None),
        (_cred(CredentialKind.API_TOKEN, ("127.0.0.2/32",)), "GET", "/v1/x", "127.0.0.2", None),
        (
            _cred(CredentialKind.API_TOKEN, ("127.0.0.2/32",)),
            "GET",
            "/v1/x",
            "127.0.0.3",
            Reason.CIDR_NOT_ALLOWED,
        ),
        (_cred(CredentialKind.ANALYTICS), "GET", "/v2/news", "127.0.0.9", None),
        (_cred(CredentialKind.ANALYTICS), "POST", "/v2/news", "127.0.0.2", Reason.READ_ONLY_TOKEN),
        (
            _cred(CredentialKind.ANALYTICS),
            "GET",
            "/v2/user/profile",
            "127.0.0.9",
            Reason.IP_NOT_REGISTERED,
        ),
    ],
)
def test_check_scope(
    cred: Credential, method: str, path: str, ip: str, reason: Reason | None
) -> None:
    def check() -> None:
        check_scope(
            cred,
            method=method,
            path=path,
            client_ip=ip_address(ip),
            registered=REGISTERED,
            table=default_table(),
        )

    if reason is None:
        check()
    else:
        with pytest.raises(Refused) as refused:
            check()
        assert refused.value.refusal.reason is reason
        assert refused.value.refusal.status == 403


# one analytics token per account; allowlists only on live tokens -----------------------------


def _analytics(expires_at: datetime) -> Credential:
    return Credential(
        session_id="an1",
        user_id="u1",
        kind=CredentialKind.ANALYTICS,
        created_ip=ip_address("203.0.113.10"),
        created_at=expires_at - timedelta(days=365),
        expires_at=expires_at,
    )


def test_an_account_without_an_analytics_token_gets_one() -> None:
    assert check_analytics_free(None, now=datetime(2026, 4, 6, tzinfo=UTC)) is None


@pytest.mark.parametrize("before_expiry", [timedelta(microseconds=1), timedelta(days=200)])
def test_a_live_analytics_token_is_a_conflict(before_expiry: timedelta) -> None:
    expiry = datetime(2027, 4, 6, tzinfo=UTC)
    with pytest.raises(Refused) as exc:
        check_analytics_free(_analytics(expiry), now=expiry - before_expiry)
    assert exc.value.refusal.reason is Reason.CONFLICT
    assert "one per account" in exc.value.refusal.message
    assert "DELETE /gateway/v1/analytics-token" in exc.value.refusal.message


@pytest.mark.parametrize("after_expiry", [timedelta(0), timedelta(days=1)])
def test_an_expired_analytics_token_is_retired_by_the_new_one(after_expiry: timedelta) -> None:
    expiry = datetime(2027, 4, 6, tzinfo=UTC)
    assert check_analytics_free(_analytics(expiry), now=expiry + after_expiry) == "an1"


def test_a_live_tokens_allowlist_may_be_replaced() -> None:
    check_cidrs_replaceable("l1", live=True)


def test_a_dead_tokens_allowlist_is_a_conflict() -> None:
    with pytest.raises(Refused) as exc:
        check_cidrs_replaceable("l1", live=False)
    assert exc.value.refusal.reason is Reason.CONFLICT
    assert exc.value.refusal.message == "token l1 is revoked or expired; create a new token"
