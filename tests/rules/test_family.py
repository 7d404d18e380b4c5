"""rules.family: who may join whose family (SPEC §9), decided from the store's facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules.decisions import Reason, Refused
from rules.family import (
    MAX_MEMBERS,
    JoinFacts,
    check_accept,
    check_invite,
    check_join,
    invitation_live,
)

OPEN = JoinFacts(
    parent_exists=True,
    parent_family=None,
    member_exists=True,
    member_family=None,
    member_members=0,
    members=0,
)


def facts(**changes: Any) -> JoinFacts:
    return replace(OPEN, **changes)


@pytest.mark.parametrize(
    ("parent_id", "member_id", "changes", "reason", "message"),
    [
        ("p", "m", {"parent_exists": False}, Reason.NOT_FOUND, "no account p"),
        # both missing: the parent is named first
        (
            "p",
            "m",
            {"parent_exists": False, "member_exists": False},
            Reason.NOT_FOUND,
            "no account p",
        ),
        ("p", "m", {"member_exists": False}, Reason.NOT_FOUND, "no account m"),
        ("p", "p", {}, Reason.BAD_REQUEST, "an account cannot join its own family"),
        ("p", "m", {"parent_family": "q"}, Reason.CONFLICT, "p is a member of another family"),
        ("p", "m", {"member_family": "q"}, Reason.CONFLICT, "m is already in a family"),
        # a member already in this very family is in a family too
        ("p", "m", {"member_family": "p"}, Reason.CONFLICT, "m is already in a family"),
        ("p", "m", {"member_members": 1}, Reason.CONFLICT, "m is the parent of a family"),
        (
            "p",
            "m",
            {"members": MAX_MEMBERS},
            Reason.CONFLICT,
            "a family has at most 10 members besides the parent",
        ),
    ],
)
def test_refusals(
    parent_id: str, member_id: str, changes: dict[str, Any], reason: Reason, message: str
) -> None:
    with pytest.raises(Refused) as exc:
        check_join(parent_id, member_id, facts(**changes), max_members=MAX_MEMBERS)
    assert exc.value.refusal.reason is reason
    assert exc.value.refusal.message == message


@pytest.mark.parametrize(("members", "max_members"), [(0, 1), (9, 10), (1, 2)])
def test_a_family_with_room_admits_one_more(members: int, max_members: int) -> None:
    check_join("p", "m", facts(members=members), max_members=max_members)


@pytest.mark.parametrize(("members", "max_members"), [(1, 1), (10, 10), (11, 10)])
def test_a_full_family_admits_nobody(members: int, max_members: int) -> None:
    with pytest.raises(Refused) as exc:
        check_join("p", "m", facts(members=members), max_members=max_members)
    assert exc.value.refusal.reason is Reason.CONFLICT


def test_a_family_is_the_parent_and_ten_members() -> None:
    # Kotak Neo / Upstox: up to 11 accounts of one family share one static IP.
    assert MAX_MEMBERS + 1 == 11


# invitations ------------------------------------------------------------------------------

SENT = datetime(2026, 4, 6, 9, 15, tzinfo=UTC)


def test_an_invitation_is_refused_only_for_reasons_about_the_inviter() -> None:
    check_invite("p", "anyone", members=MAX_MEMBERS - 1, max_members=MAX_MEMBERS)
    with pytest.raises(Refused) as exc:
        check_invite("p", "p", members=0, max_members=MAX_MEMBERS)
    assert exc.value.refusal.reason is Reason.BAD_REQUEST
    with pytest.raises(Refused) as exc:
        check_invite("p", "m", members=MAX_MEMBERS, max_members=MAX_MEMBERS)
    assert exc.value.refusal.reason is Reason.CONFLICT
    assert "at most 10 members" in exc.value.refusal.message


@pytest.mark.parametrize(
    ("age", "live"),
    [
        (timedelta(0), True),
        (timedelta(days=7) - timedelta(microseconds=1), True),
        (timedelta(days=7), False),  # it lasts 7 days, not a moment more
        (timedelta(days=30), False),
    ],
)
def test_an_invitation_lasts_seven_days(age: timedelta, live: bool) -> None:
    assert invitation_live(SENT, now=SENT + age) is live
    if live:
        check_accept("p", "m", facts(invited_at=SENT), now=SENT + age, max_members=MAX_MEMBERS)
    else:
        with pytest.raises(Refused) as exc:
            check_accept("p", "m", facts(invited_at=SENT), now=SENT + age, max_members=10)
        assert exc.value.refusal.reason is Reason.NOT_FOUND


def test_accepting_needs_an_invitation() -> None:
    with pytest.raises(Refused) as exc:
        check_accept("p", "m", facts(), now=SENT, max_members=MAX_MEMBERS)
    assert exc.value.refusal.reason is Reason.NOT_FOUND
    assert exc.value.refusal.message == "no pending invitation from p"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"member_family": "q"}, "m is already in a family"),
        ({"member_members": 2}, "m is the parent of a family"),
        ({"members": MAX_MEMBERS}, "a family has at most 10 members besides the parent"),
        ({"parent_family": "q"}, "p is a member of another family"),
    ],
)
def test_accepting_is_refused_when_the_join_is_no_longer_allowed(
    changes: dict[str, Any], message: str
) -> None:
    # "refused with 409 if it is in a family or the family is full by then" (SPEC §9)
    with pytest.raises(Refused) as exc:
        check_accept("p", "m", facts(invited_at=SENT, **changes), now=SENT, max_members=MAX_MEMBERS)
    assert exc.value.refusal.reason is Reason.CONFLICT
    assert exc.value.refusal.message == message
