from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from zoneinfo import ZoneInfo

import pytest

from rules.decisions import Reason, Refused
from rules.registry import (
    IpChangePolicy,
    IpCommit,
    IpCommitted,
    IpUpdate,
    Registration,
    check_ip_commit,
    decide_ip_change,
    next_change_allowed,
    parse_ip_update,
)

IST = ZoneInfo("Asia/Kolkata")
NY = ZoneInfo("America/New_York")
ROLLING = IpChangePolicy.ROLLING_7D
WEEK = IpChangePolicy.CALENDAR_WEEK
A = IPv4Address("203.0.113.1")
B = IPv4Address("203.0.113.2")
C = IPv6Address("2001:db8::3")


def ist(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=IST)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# -- parse_ip_update ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"primary_ip": "203.0.113.1"}, IpUpdate(A, None)),
        ({"primary_ip": "203.0.113.1", "secondary_ip": None}, IpUpdate(A, None)),
        ({"primary_ip": "203.0.113.1", "secondary_ip": ""}, IpUpdate(A, None)),
        ({"primary_ip": "203.0.113.1", "secondary_ip": "203.0.113.2"}, IpUpdate(A, B)),
        ({"primary_ip": "::ffff:203.0.113.1", "secondary_ip": "2001:DB8::3"}, IpUpdate(A, C)),
        ({"primary_ip": "2001:db8::3", "extra": [1, 2], "user_id": "X"}, IpUpdate(C, None)),
        ({"primary_ip": "127.0.0.2", "secondary_ip": "10.0.0.3"}, None),  # private is fine
    ],
)
def test_parse_ip_update_accepts(body: object, expected: IpUpdate | None) -> None:
    update = parse_ip_update(body, public_only=False)
    if expected is not None:
        assert update == expected


@pytest.mark.parametrize(
    ("body", "public_only", "reason"),
    [
        (None, False, Reason.BAD_REQUEST),
        ([], False, Reason.BAD_REQUEST),
        ("203.0.113.1", False, Reason.BAD_REQUEST),
        ({}, False, Reason.PRIMARY_IP_MISSING),
        ({"primary_ip": None}, False, Reason.PRIMARY_IP_MISSING),
        ({"primary_ip": ""}, False, Reason.PRIMARY_IP_MISSING),
        ({"secondary_ip": "203.0.113.2"}, False, Reason.PRIMARY_IP_MISSING),
        ({"primary_ip": 0}, False, Reason.INVALID_IP),
        ({"primary_ip": 3405803777}, False, Reason.INVALID_IP),
        ({"primary_ip": False}, False, Reason.INVALID_IP),
        ({"primary_ip": True}, False, Reason.INVALID_IP),
        ({"primary_ip": []}, False, Reason.INVALID_IP),
        ({"primary_ip": ["203.0.113.1"]}, False, Reason.INVALID_IP),
        ({"primary_ip": {}}, False, Reason.INVALID_IP),
        ({"primary_ip": 1.5}, False, Reason.INVALID_IP),
        ({"primary_ip": " "}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.01"}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.0/24"}, False, Reason.INVALID_IP),
        ({"primary_ip": "fe80::1%eth0"}, False, Reason.INVALID_IP),
        ({"primary_ip": "0.0.0.0"}, False, Reason.INVALID_IP),
        ({"primary_ip": "::"}, False, Reason.INVALID_IP),
        ({"primary_ip": "255.255.255.255"}, False, Reason.INVALID_IP),
        ({"primary_ip": "224.0.0.1"}, False, Reason.INVALID_IP),
        ({"primary_ip": "ff02::1"}, False, Reason.INVALID_IP),
        ({"primary_ip": "127.0.0.1"}, True, Reason.INVALID_IP),
        ({"primary_ip": "10.0.0.1"}, True, Reason.INVALID_IP),
        ({"primary_ip": "8.8.8.8", "secondary_ip": "192.168.0.1"}, True, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": 5}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": False}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": []}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": "x"}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": "0.0.0.0"}, False, Reason.INVALID_IP),
        ({"primary_ip": "203.0.113.1", "secondary_ip": "203.0.113.1"}, False, Reason.SAME_IPS),
        (
            {"primary_ip": "203.0.113.1", "secondary_ip": "::ffff:203.0.113.1"},
            False,
            Reason.SAME_IPS,
        ),
        ({"primary_ip": "2001:db8::3", "secondary_ip": "2001:DB8:0::3"}, False, Reason.SAME_IPS),
    ],
)
def test_parse_ip_update_refuses(body: object, public_only: bool, reason: Reason) -> None:
    with pytest.raises(Refused) as info:
        parse_ip_update(body, public_only=public_only)
    assert info.value.refusal.reason is reason


# -- Registration ------------------------------------------------------------------------------


def test_registration_ips_and_slots() -> None:
    empty = Registration()
    assert empty.ips == frozenset()
    assert empty.slot_of(A) is None
    reg = Registration(primary=A, secondary=C)
    assert reg.ips == frozenset({A, C})
    assert reg.ordered_ips == (A, C)
    assert reg.slot_of(A) == "primary"
    assert reg.slot_of(IPv6Address("::ffff:203.0.113.1")) == "primary"
    assert reg.slot_of(ip_address("2001:db8:0:0::3")) == "secondary"
    assert reg.slot_of(B) is None
    primary_only = Registration(primary=A)
    assert primary_only.ips == frozenset({A})
    assert primary_only.slot_of(B) is None
    mapped = Registration(primary=IPv6Address("::ffff:203.0.113.2"))
    assert mapped.ips == frozenset({B})


# -- next_change_allowed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed_at", "policy", "tz", "expected"),
    [
        (None, ROLLING, IST, None),
        (None, WEEK, IST, None),
        (ist(2026, 11, 16, 10, 0), ROLLING, IST, ist(2026, 11, 23, 10, 0)),
        (utc(2026, 11, 16, 4, 30), ROLLING, IST, ist(2026, 11, 23, 10, 0)),
        # Elapsed 7 x 24 h across a DST change, not 7 wall-clock days.
        (
            datetime(2026, 3, 5, 12, 0, tzinfo=NY),
            ROLLING,
            NY,
            datetime(2026, 3, 12, 13, 0, tzinfo=NY),
        ),
        # calendar_week: next Monday 00:00 in tz
        (ist(2026, 11, 16, 0, 0), WEEK, IST, ist(2026, 11, 23)),  # Monday 00:00 itself
        (ist(2026, 11, 18, 15, 0), WEEK, IST, ist(2026, 11, 23)),  # Wednesday
        (ist(2026, 11, 22, 23, 59, 59, 999999), WEEK, IST, ist(2026, 11, 23)),  # Sunday
        (ist(2026, 11, 23, 0, 0), WEEK, IST, ist(2026, 11, 30)),
        # Sunday 18:29 UTC is Sunday 23:59 IST; 18:30 UTC is Monday 00:00 IST.
        (utc(2026, 11, 22, 18, 29, 59), WEEK, IST, ist(2026, 11, 23)),
        (utc(2026, 11, 22, 18, 30), WEEK, IST, ist(2026, 11, 30)),
        # ISO 2026-W53 spans Mon 28 Dec 2026 - Sun 3 Jan 2027.
        (ist(2026, 12, 31, 12, 0), WEEK, IST, ist(2027, 1, 4)),
        (ist(2027, 1, 1, 12, 0), WEEK, IST, ist(2027, 1, 4)),
        (ist(2026, 12, 28, 0, 0), WEEK, IST, ist(2027, 1, 4)),
    ],
)
def test_next_change_allowed(
    changed_at: datetime | None,
    policy: IpChangePolicy,
    tz: ZoneInfo,
    expected: datetime | None,
) -> None:
    result = next_change_allowed(
        Registration(primary=A, changed_at=changed_at), policy=policy, tz=tz
    )
    assert result == expected
    if result is not None:
        assert result.tzinfo is tz


# -- decide_ip_change --------------------------------------------------------------------------

T0 = ist(2026, 11, 16, 10, 0)
CURRENT = Registration(
    primary=A,
    secondary=B,
    primary_updated_at=T0,
    secondary_updated_at=T0,
    changed_at=T0,
    version=3,
)


def test_first_registration_is_allowed_at_once() -> None:
    now = ist(2026, 11, 16, 10, 0)
    for policy in IpChangePolicy:
        new = decide_ip_change(Registration(), IpUpdate(A, None), now=now, policy=policy, tz=IST)
        assert new == Registration(
            primary=A, primary_updated_at=now, secondary_updated_at=None, changed_at=now, version=1
        )


@pytest.mark.parametrize("policy", list(IpChangePolicy))
@pytest.mark.parametrize(
    "update",
    [
        IpUpdate(A, B),
        IpUpdate(IPv6Address("::ffff:203.0.113.1"), IPv6Address("::ffff:203.0.113.2")),
    ],
)
def test_identical_update_is_a_noop_even_in_cooldown(
    policy: IpChangePolicy, update: IpUpdate
) -> None:
    assert decide_ip_change(CURRENT, update, now=T0, policy=policy, tz=IST) is None


def test_identical_noop_without_secondary() -> None:
    current = Registration(primary=A, changed_at=T0, version=1)
    assert decide_ip_change(current, IpUpdate(A, None), now=T0, policy=ROLLING, tz=IST) is None


@pytest.mark.parametrize(
    ("update", "primary_changed", "secondary_changed"),
    [
        (IpUpdate(C, B), True, False),  # primary replaced
        (IpUpdate(A, C), False, True),  # secondary replaced
        (IpUpdate(A, None), False, True),  # secondary removed
        (IpUpdate(B, A), True, True),  # swapped
        (IpUpdate(C, None), True, True),
    ],
)
def test_change_after_cooldown(
    update: IpUpdate, primary_changed: bool, secondary_changed: bool
) -> None:
    now = T0 + timedelta(days=7)
    new = decide_ip_change(CURRENT, update, now=now, policy=ROLLING, tz=IST)
    assert new is not None
    assert new.primary == update.primary
    assert new.secondary == update.secondary
    assert new.primary_updated_at == (now if primary_changed else T0)
    assert new.secondary_updated_at == (now if secondary_changed else T0)
    assert new.changed_at == now
    assert new.version == 4


def test_setting_a_secondary_stamps_only_it() -> None:
    current = Registration(primary=A, primary_updated_at=T0, changed_at=T0, version=1)
    now = T0 + timedelta(days=8)
    new = decide_ip_change(current, IpUpdate(A, B), now=now, policy=ROLLING, tz=IST)
    assert new == Registration(A, B, T0, now, now, 2)


def test_result_is_canonical() -> None:
    now = T0 + timedelta(days=8)
    update = IpUpdate(IPv6Address("::ffff:203.0.113.9"), IPv6Address("::ffff:203.0.113.8"))
    new = decide_ip_change(CURRENT, update, now=now, policy=ROLLING, tz=IST)
    assert new is not None
    assert new.primary == IPv4Address("203.0.113.9")
    assert new.secondary == IPv4Address("203.0.113.8")


UPDATE = IpUpdate(C, None)


@pytest.mark.parametrize(
    ("policy", "changed_at", "now", "allowed"),
    [
        # rolling_7d: exactly 7 days
        (ROLLING, T0, T0 + timedelta(days=7) - timedelta(microseconds=1), False),
        (ROLLING, T0, T0 + timedelta(days=7), True),
        (ROLLING, T0, T0 + timedelta(days=30), True),
        (ROLLING, T0, T0, False),
        (ROLLING, T0, T0 - timedelta(hours=1), False),  # clock behind the last change
        # rolling_7d spans a calendar week boundary: Sunday change, Monday not yet allowed
        (ROLLING, ist(2026, 11, 22, 23, 0), ist(2026, 11, 23, 0, 0), False),
        # calendar_week: Sunday 23:59:59.999999 vs Monday 00:00 IST
        (WEEK, ist(2026, 11, 16, 10), ist(2026, 11, 22, 23, 59, 59, 999999), False),
        (WEEK, ist(2026, 11, 16, 10), ist(2026, 11, 23, 0, 0), True),
        (WEEK, ist(2026, 11, 22, 23, 59), ist(2026, 11, 23, 0, 0), True),
        (WEEK, ist(2026, 11, 23, 0, 0), ist(2026, 11, 29, 23, 59, 59), False),
        # the same instants in UTC: Sunday 18:30 UTC is Monday 00:00 IST
        (WEEK, utc(2026, 11, 16, 4, 30), utc(2026, 11, 22, 18, 29, 59, 999999), False),
        (WEEK, utc(2026, 11, 16, 4, 30), utc(2026, 11, 22, 18, 30), True),
        # Sunday 20:00 UTC is already Monday in IST: the same ISO week as Monday 10:00 IST
        (WEEK, utc(2026, 11, 22, 20, 0), ist(2026, 11, 23, 10, 0), False),
        (WEEK, utc(2026, 11, 22, 20, 0), ist(2026, 11, 30, 0, 0), True),
        # Monday 00:00 UTC is Monday 05:30 IST, the same week as Sunday 19:00 UTC
        (WEEK, utc(2026, 11, 22, 19, 0), utc(2026, 11, 23, 0, 0), False),
        # 2026-W53: Thu 31 Dec 2026 and Fri 1 Jan 2027 are one ISO week
        (WEEK, ist(2026, 12, 31, 12), ist(2027, 1, 1, 9), False),
        (WEEK, ist(2026, 12, 31, 12), ist(2027, 1, 3, 23, 59, 59, 999999), False),
        (WEEK, ist(2026, 12, 31, 12), ist(2027, 1, 4, 0, 0), True),
        (WEEK, ist(2026, 12, 31, 12), utc(2027, 1, 3, 18, 30), True),
        # different weeks, less than 7 days apart
        (WEEK, ist(2026, 11, 20, 10), ist(2026, 11, 23, 10), True),
    ],
)
def test_cooldown(
    policy: IpChangePolicy, changed_at: datetime, now: datetime, allowed: bool
) -> None:
    current = Registration(
        primary=A, primary_updated_at=changed_at, changed_at=changed_at, version=1
    )
    if allowed:
        new = decide_ip_change(current, UPDATE, now=now, policy=policy, tz=IST)
        assert new is not None
        assert new.changed_at == now
        return
    with pytest.raises(Refused) as info:
        decide_ip_change(current, UPDATE, now=now, policy=policy, tz=IST)
    assert info.value.refusal.reason is Reason.CHANGE_TOO_SOON


@pytest.mark.parametrize(
    ("policy", "changed_at", "when"),
    [
        (WEEK, ist(2026, 11, 18, 15), "2026-11-23 00:00:00 IST"),
        (WEEK, ist(2026, 12, 31, 12), "2027-01-04 00:00:00 IST"),
        (ROLLING, utc(2026, 11, 16, 4, 30), "2026-11-23 10:00:00 IST"),
    ],
)
def test_cooldown_message_says_when(
    policy: IpChangePolicy, changed_at: datetime, when: str
) -> None:
    current = Registration(primary=A, changed_at=changed_at, version=1)
    with pytest.raises(Refused) as info:
        decide_ip_change(current, UPDATE, now=changed_at, policy=policy, tz=IST)
    assert info.value.refusal.message == (
        f"IP addresses can be changed once a week; next change allowed after {when}"
    )


# what the store did with a decided change -------------------------------------------------


def test_an_applied_change_is_no_refusal() -> None:
    check_ip_commit(IpCommitted(IpCommit.APPLIED))


@pytest.mark.parametrize(
    ("committed", "reason", "message"),
    [
        (
            IpCommitted(IpCommit.VERSION_MOVED),
            Reason.CONCURRENT_UPDATE,
            "another update of the static IPs won the race; read them again",
        ),
        (
            IpCommitted(IpCommit.TAKEN, "203.0.113.7"),
            Reason.IP_TAKEN,
            "203.0.113.7 is registered to another client; a static IP belongs to one client or"
            " one family",
        ),
    ],
)
def test_a_change_not_applied_is_refused(
    committed: IpCommitted, reason: Reason, message: str
) -> None:
    with pytest.raises(Refused) as exc:
        check_ip_commit(committed)
    assert exc.value.refusal.reason is reason
    assert exc.value.refusal.message == message
