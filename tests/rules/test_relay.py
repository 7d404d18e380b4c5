"""The login relay's decisions (SPEC §14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules.decisions import Reason, Refused
from rules.relay import Candidate, broker_session_serves, relay_account

ACCOUNTS = [
    Candidate("AB1234"),
    Candidate("ASHA", broker_user_id="XY9876"),
    Candidate("RAVI", broker_user_id="AB1234X"),
    Candidate("CD5678", broker_user_id="ZZ0001"),  # its user_id no longer names it
]


@pytest.mark.parametrize(
    ("code", "user_id"),
    [
        ("AB1234", "AB1234"),  # by user_id
        ("XY9876", "ASHA"),  # by broker_user_id
        ("AB1234X", "RAVI"),
        ("ZZ0001", "CD5678"),
    ],
)
def test_the_account_the_answer_names(code: str, user_id: str) -> None:
    assert relay_account(code, ACCOUNTS) == user_id


def test_an_explicit_broker_user_id_wins_over_a_user_id() -> None:
    accounts = [Candidate("XY9876"), Candidate("ASHA", broker_user_id="XY9876")]
    assert relay_account("XY9876", accounts) == "ASHA"
    assert relay_account("XY9876", list(reversed(accounts))) == "ASHA"


@pytest.mark.parametrize("code", ["NOBODY", "CD5678", "", None, 7])
def test_no_account_is_forbidden(code: object) -> None:
    with pytest.raises(Refused) as exc:
        relay_account(code, ACCOUNTS)
    assert exc.value.refusal.reason is Reason.FORBIDDEN


T0 = datetime(2026, 4, 6, 9, 15, tzinfo=UTC)
END = T0 + timedelta(hours=18)


@pytest.mark.parametrize(
    ("now", "version", "egress", "serves"),
    [
        (T0, 3, "203.0.113.7", True),
        (END - timedelta(microseconds=1), 3, "203.0.113.7", True),
        (END, 3, "203.0.113.7", False),  # the daily logout
        (T0, 4, "203.0.113.7", False),  # the registered IPs changed
        (T0, 3, "203.0.113.8", False),  # the egress address changed
        (T0, 3, None, False),  # the egress address was cleared
    ],
)
def test_a_kept_session_serves_until_logout_and_while_its_facts_hold(
    now: datetime, version: int, egress: str | None, serves: bool
) -> None:
    assert (
        broker_session_serves(
            expires_at=END,
            registration_version=3,
            egress_ip="203.0.113.7",
            now=now,
            current_version=version,
            current_egress=egress,
        )
        is serves
    )
