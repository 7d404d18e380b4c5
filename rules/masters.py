"""When instrument masters are refreshed, and when one is too old to trade on (SPEC §14).

New option contracts appear every trading day, so a master is downloaded every day at
``instruments.refresh_at`` (local time in ``rules.timezone``) and one older than one trading day
is a readiness failure: an order for a contract listed since would find no tick size.  Trading
days here are Monday to Friday; exchange holidays are not known to the gateway, so a holiday
counts as a trading day (the stricter reading: the master is called stale a day early).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo


def next_refresh(after: datetime, *, at: time, tz: tzinfo) -> datetime:
    """The first instant strictly after ``after`` whose local time in ``tz`` is ``at``."""
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate


def _trading_days_between(first: date, last: date) -> int:
    """Weekdays in (first, last]."""
    days = 0
    day = first + timedelta(days=1)
    while day <= last:
        if day.weekday() < 5:
            days += 1
        day += timedelta(days=1)
    return days


def master_is_stale(loaded_at: datetime, *, now: datetime, tz: tzinfo) -> bool:
    """True when more than one trading day began since the master was loaded."""
    loaded = loaded_at.astimezone(tz).date()
    today = now.astimezone(tz).date()
    return _trading_days_between(loaded, today) > 1
