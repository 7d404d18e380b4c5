"""Families (SPEC §9): who may join whose family.

Kotak Neo and Upstox let up to 11 accounts of one family (self, spouse, dependent children
and parents) trade from one registered static IP; only the parent registers or changes it.
Rules encoded, checked in this order so a request hears about the first thing wrong with it:

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

from rules.decisions import Reason, Refused

__all__ = ["MAX_MEMBERS", "JoinFacts", "check_join"]

MAX_MEMBERS = 10  # "up to 11 accounts": the parent and ten members


@dataclass(frozen=True, slots=True)
class JoinFacts:
    """What a join depends on, as the store read it (and re-reads before it commits)."""

    parent_exists: bool
    parent_family: str | None  # the parent account's own parent_id
    member_exists: bool
    member_family: str | None  # the member account's parent_id
    member_members: int  # members of a family the member is the parent of
    members: int  # members of the parent's family now


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
