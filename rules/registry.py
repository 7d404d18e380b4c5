"""The static IP registry: what a valid update is and when the registered set may change.

Rules encoded (SPEC §4; Upstox "Static IP" API, ``PUT /v2/user/ip``; the SEBI circular
"Safer participation of retail investors in algorithmic trading" of 4 Feb 2025 and the
exchanges' implementation standards, which require API orders from a registered static IP):

- ``primary_ip`` is required (UDAPI1182); ``secondary_ip`` is optional; each is one address in
  standard notation (``rules.ip``) and a JSON string; anything else is UDAPI1183.
- Primary and secondary differ after canonicalisation (UDAPI1184).
- The first registration is allowed at once and starts the period; after that the set changes
  once per period (UDAPI1185): ``rolling_7d`` = at least 7 days since the last change (which
  also satisfies "once per calendar week"), ``calendar_week`` = at most one change per ISO week
  in ``rules.timezone``, the next allowed from Monday 00:00.
- An update identical to the current registration changes nothing, even inside the cooldown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from rules.decisions import Reason, Refused
from rules.ip import canonical, check_registrable, parse_ip
from rules.types import IPAddress

__all__ = [
    "IpChangePolicy",
    "IpCommit",
    "IpCommitted",
    "IpUpdate",
    "Registration",
    "check_ip_commit",
    "decide_ip_change",
    "next_change_allowed",
    "parse_ip_update",
]

PRIMARY = "primary"
SECONDARY = "secondary"
_COOLDOWN = timedelta(days=7)


class IpChangePolicy(enum.Enum):
    ROLLING_7D = "rolling_7d"
    CALENDAR_WEEK = "calendar_week"


@dataclass(frozen=True, slots=True)
class Registration:
    """An account's registered IPs (canonical); all datetimes are aware."""

    primary: IPAddress | None = None
    secondary: IPAddress | None = None
    primary_updated_at: datetime | None = None
    secondary_updated_at: datetime | None = None
    changed_at: datetime | None = None
    version: int = 0

    @property
    def ips(self) -> frozenset[IPAddress]:
        return frozenset(self.ordered_ips)

    @property
    def ordered_ips(self) -> tuple[IPAddress, ...]:
        """Primary first, for messages."""
        return tuple(canonical(ip) for ip in (self.primary, self.secondary) if ip is not None)

    def slot_of(self, ip: IPAddress) -> str | None:
        if _same(ip, self.primary):
            return PRIMARY
        if _same(ip, self.secondary):
            return SECONDARY
        return None


class IpCommit(enum.Enum):
    """What the store did with a decided change: it writes only if the facts still hold."""

    APPLIED = "applied"
    VERSION_MOVED = "version_moved"  # another change committed since the read
    TAKEN = "taken"  # an account outside the family holds one of the addresses


@dataclass(frozen=True, slots=True)
class IpCommitted:
    status: IpCommit
    taken: str | None = None  # the address found held, for TAKEN


@dataclass(frozen=True, slots=True)
class IpUpdate:
    primary: IPAddress
    secondary: IPAddress | None


def _address(body: dict[object, object], key: str, *, public_only: bool) -> IPAddress | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refused(Reason.INVALID_IP, f"{key} must be a string holding one IPv4 or IPv6 address")
    addr = parse_ip(value)
    check_registrable(addr, public_only=public_only)
    return addr


def parse_ip_update(body: object, *, public_only: bool) -> IpUpdate:
    """The decoded JSON body of ``PUT /v2/user/ip``; unknown keys are ignored like Upstox does."""
    if not isinstance(body, dict):
        raise Refused(Reason.BAD_REQUEST, "the body must be a JSON object with primary_ip")
    if body.get("primary_ip") in (None, ""):
        raise Refused(Reason.PRIMARY_IP_MISSING, "primary_ip is required")
    primary = _address(body, "primary_ip", public_only=public_only)
    assert primary is not None
    secondary = _address(body, "secondary_ip", public_only=public_only)
    if primary == secondary:
        raise Refused(
            Reason.SAME_IPS, f"primary_ip and secondary_ip are the same address {primary}"
        )
    return IpUpdate(primary, secondary)


def next_change_allowed(
    current: Registration, *, policy: IpChangePolicy, tz: tzinfo
) -> datetime | None:
    """The first instant a change is allowed again, aware in ``tz``; None: allowed now."""
    if current.changed_at is None:
        return None
    if policy is IpChangePolicy.ROLLING_7D:
        # Elapsed time, not wall time: a DST shift must not shorten the period.
        return (current.changed_at.astimezone(UTC) + _COOLDOWN).astimezone(tz)
    local = current.changed_at.astimezone(tz)
    monday = local.date() + timedelta(days=7 - local.weekday())
    return datetime.combine(monday, time(0), tzinfo=tz)


def _same(a: IPAddress | None, b: IPAddress | None) -> bool:
    if a is None or b is None:
        return a is b
    return canonical(a) == canonical(b)


def decide_ip_change(
    current: Registration,
    update: IpUpdate,
    *,
    now: datetime,
    policy: IpChangePolicy,
    tz: tzinfo,
) -> Registration | None:
    """The registration after ``update``, or None when it changes nothing."""
    primary_changed = not _same(current.primary, update.primary)
    secondary_changed = not _same(current.secondary, update.secondary)
    if not (primary_changed or secondary_changed):
        return None
    allowed = next_change_allowed(current, policy=policy, tz=tz)
    if allowed is not None and now < allowed:
        raise Refused(
            Reason.CHANGE_TOO_SOON,
            "IP addresses can be changed once a week; next change allowed after "
            + allowed.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    return Registration(
        primary=canonical(update.primary),
        secondary=None if update.secondary is None else canonical(update.secondary),
        primary_updated_at=now if primary_changed else current.primary_updated_at,
        secondary_updated_at=now if secondary_changed else current.secondary_updated_at,
        changed_at=now,
        version=current.version + 1,
    )


def check_ip_commit(committed: IpCommitted) -> None:
    """Raise Refused unless the store applied the change.

    A version that moved is UDAPI1186 (two concurrent PUTs: exactly one wins).  An address
    is held by one account or one family (SPEC §4: "a static IP belongs to one client").
    """
    if committed.status is IpCommit.VERSION_MOVED:
        raise Refused(
            Reason.CONCURRENT_UPDATE,
            "another update of the static IPs won the race; read them again",
        )
    if committed.status is IpCommit.TAKEN:
        raise Refused(
            Reason.IP_TAKEN,
            f"{committed.taken} is registered to another client; a static IP belongs to one"
            " client or one family",
        )
