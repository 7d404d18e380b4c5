from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from zoneinfo import ZoneInfo

import pytest

from rules.decisions import Reason, Refused
from rules.registry import Registration
from rules.sessions import (
    STATIC_IP_BLOCKED,
    Credential,
    admit_order,
    check_allowlist,
    check_live,
    session_expiry,
    slot_for,
)
from rules.types import CredentialKind, IPAddress

IST = ZoneInfo("Asia/Kolkata")
LOGOUT = time(3, 30)
P = IPv4Address("127.0.0.2")
S = IPv4Address("127.0.0.3")
OTHER = IPv4Address("127.0.0.9")
REG = Registration(primary=P, secondary=S, version=1)
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=IST)


def ist(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=IST)


def cred(
    kind: CredentialKind = CredentialKind.LOGIN,
    created_ip: IPAddress = P,
    **changes: object,
) -> Credential:
    base = Credential(
        session_id="sess-1",
        user_id="U1",
        kind=kind,
        created_ip=created_ip,
        created_at=ist(2026, 11, 18, 9, 0),
        expires_at=ist(2026, 11, 19, 3, 30),
        slot=REG.slot_of(created_ip),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        (ist(2026, 11, 18, 3, 29), ist(2026, 11, 18, 3, 30)),
        (ist(2026, 11, 18, 3, 29, 59, 999999), ist(2026, 11, 18, 3, 30)),
        (ist(2026, 11, 18, 3, 30), ist(2026, 11, 19, 3, 30)),
        (ist(2026, 11, 18, 3, 30, 0, 1), ist(2026, 11, 19, 3, 30)),
        (ist(2026, 11, 18, 0, 0), ist(2026, 11, 18, 3, 30)),
        (ist(2026, 11, 18, 23, 59), ist(2026, 11, 19, 3, 30)),
        (ist(2026, 12, 31, 9, 0), ist(2027, 1, 1, 3, 30)),
        # 21:59 UTC is 03:29 IST the next day; 22:00 UTC is 03:30 IST.
        (datetime(2026, 11, 17, 21, 59, tzinfo=UTC), ist(2026, 11, 18, 3, 30)),
        (datetime(2026, 11, 17, 22, 0, tzinfo=UTC), ist(2026, 11, 19, 3, 30)),
    ],
)
def test_session_expiry(created_at: datetime, expected: datetime) -> None:
    expiry = session_expiry(created_at, logout=LOGOUT, tz=IST)
    assert expiry == expected
    assert expiry.tzinfo is IST


def test_session_expiry_other_logout_time() -> None:
    created = ist(2026, 11, 18, 16, 0)
    assert session_expiry(created, logout=time(15, 45), tz=IST) == ist(2026, 11, 19, 15, 45)
    assert session_expiry(created, logout=time(16, 1), tz=IST) == ist(2026, 11, 18, 16, 1)


@pytest.mark.parametrize(
    ("ip", "slot"),
    [
        (P, "primary"),
        (S, "secondary"),
        (IPv6Address("::ffff:127.0.0.3"), "secondary"),
        (OTHER, None),
    ],
)
def test_slot_for(ip: IPAddress, slot: str | None) -> None:
    assert slot_for(ip, REG) == slot


@pytest.mark.parametrize(
    ("credential", "now", "fragment"),
    [
        (None, NOW, "missing or unknown"),
        (cred(revoked=True), NOW, "invalidated"),
        (cred(), ist(2026, 11, 19, 3, 30), "expired at 2026-11-19 03:30:00+05:30"),
        (cred(), ist(2026, 11, 20), "expired"),
    ],
)
def test_check_live_refuses(credential: Credential | None, now: datetime, fragment: str) -> None:
    with pytest.raises(Refused) as info:
        check_live(credential, now=now)
    assert info.value.refusal.reason is Reason.INVALID_TOKEN
    assert fragment in info.value.refusal.message


def test_check_live_admits_until_the_last_microsecond() -> None:
    c = cred()
    assert check_live(c, now=ist(2026, 11, 19, 3, 29, 59, 999999)) is c


NETS = (IPv4Network("127.0.0.0/30"), IPv6Network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("cidrs", "ip", "ok"),
    [
        ((), OTHER, True),
        (NETS, P, True),
        (NETS, S, True),
        (NETS, IPv6Address("::ffff:127.0.0.1"), True),
        (NETS, IPv6Address("2001:db8::1"), True),
        (NETS, OTHER, False),
        (NETS, IPv6Address("2001:db9::1"), False),
    ],
)
def test_check_allowlist(
    cidrs: tuple[IPv4Network | IPv6Network, ...], ip: IPAddress, ok: bool
) -> None:
    c = cred(CredentialKind.API_TOKEN, allowed_cidrs=cidrs)
    if ok:
        check_allowlist(c, ip)
        return
    with pytest.raises(Refused) as info:
        check_allowlist(c, ip)
    assert info.value.refusal.reason is Reason.CIDR_NOT_ALLOWED
    assert str(ip) in info.value.refusal.message


LOGIN, ANALYTICS, API = CredentialKind.LOGIN, CredentialKind.ANALYTICS, CredentialKind.API_TOKEN


@pytest.mark.parametrize(
    ("credential", "client", "registration", "holder", "reason"),
    [
        # admitted
        (cred(), P, REG, "sess-1", None),
        (cred(created_ip=S), S, REG, "sess-1", None),
        (cred(created_ip=S), IPv6Address("::ffff:127.0.0.3"), REG, "sess-1", None),
        (cred(created_ip=IPv6Address("::ffff:127.0.0.2")), P, REG, "sess-1", None),
        (cred(API), P, REG, None, None),  # API tokens hold no slot
        (cred(API, created_ip=OTHER), S, REG, "someone", None),  # nor are they IP-bound
        (cred(API, allowed_cidrs=(IPv4Network("127.0.0.0/8"),)), P, REG, None, None),
        # step 1
        (None, P, REG, "sess-1", Reason.INVALID_TOKEN),
        (cred(revoked=True), P, REG, "sess-1", Reason.INVALID_TOKEN),
        (cred(expires_at=NOW), P, REG, "sess-1", Reason.INVALID_TOKEN),
        (cred(ANALYTICS), P, REG, "sess-1", Reason.READ_ONLY_TOKEN),
        (cred(ANALYTICS, revoked=True), P, REG, "sess-1", Reason.INVALID_TOKEN),
        # step 2 (before 3 and 4)
        (cred(), OTHER, REG, "sess-1", Reason.IP_NOT_REGISTERED),
        (cred(created_ip=OTHER), OTHER, REG, "sess-1", Reason.IP_NOT_REGISTERED),
        (cred(), P, Registration(), "sess-1", Reason.IP_NOT_REGISTERED),
        (cred(), P, Registration(primary=S), None, Reason.IP_NOT_REGISTERED),
        (cred(API), OTHER, REG, None, Reason.IP_NOT_REGISTERED),
        # the allowlist comes before the static IP rule for API tokens
        (
            cred(API, allowed_cidrs=(IPv4Network("10.0.0.0/8"),)),
            P,
            REG,
            None,
            Reason.CIDR_NOT_ALLOWED,
        ),
        (
            cred(API, allowed_cidrs=(IPv4Network("10.0.0.0/8"),)),
            OTHER,
            REG,
            None,
            Reason.CIDR_NOT_ALLOWED,
        ),
        # step 3 (before 4)
        (cred(), S, REG, "sess-1", Reason.SESSION_IP_MISMATCH),
        (cred(), S, REG, "sess-2", Reason.SESSION_IP_MISMATCH),
        (cred(created_ip=S), P, REG, "sess-1", Reason.SESSION_IP_MISMATCH),
        # step 4
        (cred(), P, REG, "sess-2", Reason.SLOT_TAKEN),
        (cred(), P, REG, None, Reason.SLOT_TAKEN),
        # a console login holds no slot, even from the registered IP and as the only session
        (cred(slot=None), P, REG, None, Reason.SLOT_TAKEN),
        (cred(slot=None), P, REG, "sess-1", Reason.SLOT_TAKEN),
    ],
)
def test_admit_order(
    credential: Credential | None,
    client: IPAddress,
    registration: Registration,
    holder: str | None,
    reason: Reason | None,
) -> None:
    if reason is None:
        admitted = admit_order(
            credential, now=NOW, client_ip=client, registration=registration, slot_holder=holder
        )
        assert admitted is credential
        return
    with pytest.raises(Refused) as info:
        admit_order(
            credential, now=NOW, client_ip=client, registration=registration, slot_holder=holder
        )
    assert info.value.refusal.reason is reason


def _refusal(credential: Credential, client: IPAddress, holder: str | None) -> Refused:
    with pytest.raises(Refused) as info:
        admit_order(credential, now=NOW, client_ip=client, registration=REG, slot_holder=holder)
    return info.value


def test_messages() -> None:
    assert _refusal(cred(), OTHER, "sess-1").refusal.message == (
        f"{STATIC_IP_BLOCKED}: the order came from 127.0.0.9, which is not a registered IP of"
        " this account; registered IPs: 127.0.0.2, 127.0.0.3"
    )
    assert STATIC_IP_BLOCKED == "Access to this API is blocked due to static IP restrictions"
    with pytest.raises(Refused) as unregistered:
        admit_order(cred(), now=NOW, client_ip=P, registration=Registration(), slot_holder="sess-1")
    assert unregistered.value.refusal.message.endswith(
        "the order came from 127.0.0.2, which is not a registered IP of this account;"
        " registered IPs: none"
    )
    assert _refusal(cred(), S, "sess-1").refusal.message == (
        "Access to this API is blocked due to static IP restrictions: this session was created "
        "from 127.0.0.2 but the order came from 127.0.0.3; registered IPs: 127.0.0.2, "
        "127.0.0.3. Log in again from the IP you trade from."
    )
    assert _refusal(cred(), P, "sess-2").refusal.message == (
        "a newer session created from 127.0.0.2 holds this IP's order slot; use it or log in again"
    )
    assert "read-only" in _refusal(cred(ANALYTICS), P, "sess-1").refusal.message


@pytest.mark.parametrize("ip", [P, S, OTHER])
def test_a_console_login_never_takes_a_slot(ip: IPAddress) -> None:
    assert slot_for(ip, REG, console=True) is None
    assert slot_for(P, REG, console=False) == "primary"


def test_a_session_without_a_slot_is_told_why() -> None:
    message = _refusal(cred(slot=None), P, "sess-1").refusal.message
    assert "holds no order slot" in message
    assert "console" in message


def test_family_member_uses_the_parents_registration() -> None:
    member = cred(user_id="MEMBER", session_id="m-1")
    parent_registration = Registration(primary=P)
    admitted = admit_order(
        member, now=NOW, client_ip=P, registration=parent_registration, slot_holder="m-1"
    )
    assert admitted.user_id == "MEMBER"


def test_expiry_is_checked_against_now_not_created_at() -> None:
    c = cred(expires_at=NOW + timedelta(microseconds=1))
    assert admit_order(c, now=NOW, client_ip=P, registration=REG, slot_holder="sess-1") is c
