"""Families (SPEC §9): who may join whose family.

Kotak Neo and Upstox let up to 11 accounts of one family (self, spouse, dependent children
and parents) trade from one registered static IP; only the parent registers or changes it.

Nobody joins a family without consenting (SPEC §9): the parent invites, and the invited
account accepts with its own login session within 7 days.  An invitation is refused only for
reasons about the inviter (itself, or a full family), so its answer reveals nothing about the
invited user id.  The operator (admin API) adds a member directly.

A join is checked in this order, so a request hears about the first thing wrong with it:

- both accounts exist (404, the parent first);
- an account cannot join its own family (400);
- families do not nest and an account is in at most one: the parent is not a member of
  another family, the member is in no family and is not the parent of one (409);
- a family has at most ``max_members`` members besides the parent (409).

The decision is made from :class:`JoinFacts` read from the store; the store commits the join
only if the same facts still hold when it writes (a join decided on facts that moved is
decided again), so a store never decides a join itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rules.decisions import Reason, Refused

__all__ = [
    "INVITATION_LIFETIME",
    "MAX_MEMBERS",
    "JoinFacts",
    "check_accept",
    "check_invite",
    "check_join",
    "invitation_live",
]

MAX_MEMBERS = 10  # "up to 11 accounts": the parent and ten members
INVITATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class JoinFacts:
    """What a join depends on, as the store read it (and re-reads before it commits)."""

    parent_exists: bool
    parent_family: str | None  # the parent account's own parent_id
    member_exists: bool
    member_family: str | None  # the member account's parent_id
    member_members: int  # members of a family the member is the parent of
    members: int  # members of the parent's family now
    invited_at: datetime | None = None  # the parent's pending invitation of the member


def check_join(parent_id: str, member_id: str, facts: JoinFacts, *, max_members: int) -> None:
    """Raise Refused when ``member_id`` may not join ``parent_id``'s family."""
    if not facts.parent_exists:
        raise Refused(Reason.NOT_FOUND, f"no account {parent_id}")
    if not facts.member_exists:
        raise Refused(Reason.NOT_FOUND, f"no account {member_id}")
    if parent_id == member_id:
        raise Refused(Reason.BAD_REQUEST, "an account cannot join its own family")
    if facts.parent_family is not None:
        raise Refused(Reason.CONFLICT, f"{parent_id} is a member of another family")
    if facts.member_family is not None:
        raise Refused(Reason.CONFLICT, f"{member_id} is already in a family")
    if facts.member_members > 0:
        raise Refused(Reason.CONFLICT, f"{member_id} is the parent of a family")
    if facts.members >= max_members:
        raise Refused(
            Reason.CONFLICT, f"a family has at most {max_members} members besides the parent"
        )


def check_invite(parent_id: str, member_id: str, *, members: int, max_members: int) -> None:
    """Raise Refused for an invitation the inviter may not send; nothing about the invited
    account is looked at, so the answer is the same whoever ``member_id`` is."""
    if parent_id == member_id:
        raise Refused(Reason.BAD_REQUEST, "an account cannot join its own family")
    if members >= max_members:
        raise Refused(
            Reason.CONFLICT, f"a family has at most {max_members} members besides the parent"
        )


def invitation_live(invited_at: datetime, *, now: datetime) -> bool:
    """An invitation lasts 7 days from when it was (last) sent."""
    return now < invited_at + INVITATION_LIFETIME


def check_accept(
    parent_id: str, member_id: str, facts: JoinFacts, *, now: datetime, max_members: int
) -> None:
    """Raise Refused when ``member_id`` may not accept ``parent_id``'s invitation now: there
    must be a live one, and the join must still be allowed (in a family or full by then: 409)."""
    if facts.invited_at is None or not invitation_live(facts.invited_at, now=now):
        raise Refused(Reason.NOT_FOUND, f"no pending invitation from {parent_id}")
    check_join(parent_id, member_id, facts, max_members=max_members)
