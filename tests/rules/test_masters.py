"""Instrument master refresh times and staleness (SPEC §14)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from rules.masters import master_is_stale, next_refresh

IST = ZoneInfo("Asia/Kolkata")
EIGHT = time(8, 0)


def ist(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=IST)  # 2026-11-16 is a Monday


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (ist(16, 7, 59), ist(16, 8)),  # later today
        (ist(16, 8), ist(17, 8)),  # exactly at it: the next one
        (ist(16, 9), ist(17, 8)),
        (ist(21, 23), ist(22, 8)),  # every day, weekends too
    ],
)
def test_next_refresh(after: datetime, expected: datetime) -> None:
    assert next_refresh(after, at=EIGHT, tz=IST) == expected


def test_next_refresh_from_utc() -> None:
    # 02:00 UTC is 07:30 IST: today's 08:00 IST is next
    utc = datetime(2026, 11, 16, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert next_refresh(utc, at=EIGHT, tz=IST) == ist(16, 8)


@pytest.mark.parametrize(
    ("loaded", "now", "stale"),
    [
        (ist(16, 8), ist(16, 15), False),  # same day
        (ist(16, 8), ist(17, 7), False),  # one trading day began
        (ist(16, 8), ist(18, 7), True),  # two
        (ist(20, 8), ist(23, 7), False),  # Friday -> Monday: only Monday is a trading day
        (ist(20, 8), ist(24, 7), True),  # Friday -> Tuesday
        (ist(21, 8), ist(23, 9), False),  # Saturday -> Monday
    ],
)
def test_a_master_older_than_one_trading_day_is_stale(
    loaded: datetime, now: datetime, stale: bool
) -> None:
    assert master_is_stale(loaded, now=now, tz=IST) is stale
