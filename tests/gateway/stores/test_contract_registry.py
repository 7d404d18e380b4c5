"""The Registry role: static IPs and families (SPEC §4, §9).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.api.family import join
from gateway.stores.base import Commit, Invitation, Store
from rules.decisions import Reason, Refused
from rules.family import JoinFacts
from rules.registry import IpCommit, IpCommitted, Registration

from .values import (
    IP_A,
    IP_B,
    IP_C,
    IP_V6,
    LATER,
    T0,
    accounts,
    family,
    get,
    ip_change,
    is_live,
    login,
    reason,
    registration,
)

# registry --------------------------------------------------------------------------------


async def test_first_registration_is_stored_and_read_back(store: Store) -> None:
    await accounts(store, "u1")
    await ip_change(store, "u1", registration(IP_A, IP_V6), expected_version=0)
    assert await store.get_registration("u1") == registration(IP_A, IP_V6)


async def test_ip_change_with_a_stale_version_is_refused_and_changes_nothing(store: Store) -> None:
    await accounts(store, "u1")
    await ip_change(store, "u1", registration(IP_A), expected_version=0)
    await login(store, "s1", "u1", ip=IP_A)

    with pytest.raises(Refused) as exc:
        await ip_change(store, "u1", registration(IP_B), expected_version=0)
    assert reason(exc) is Reason.CONCURRENT_UPDATE
    assert await store.get_registration("u1") == registration(IP_A)
    assert await is_live(store, "s1")


async def test_concurrent_ip_changes_have_exactly_one_winner(store: Store) -> None:
    await accounts(store, "u1")
    await ip_change(store, "u1", registration(IP_A), expected_version=0)
    updates = [registration(IP_B, version=2), registration(IP_C, version=2)]

    results = await asyncio.gather(
        *(ip_change(store, "u1", u, expected_version=1) for u in updates),
        return_exceptions=True,
    )

    winners = [u for u, r in zip(updates, results, strict=True) if r is None]
    losers = [r for r in results if r is not None]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], Refused)
    assert losers[0].refusal.reason is Reason.CONCURRENT_UPDATE
    assert await store.get_registration("u1") == winners[0]


@pytest.mark.parametrize("taken", ["primary", "secondary"])
async def test_ip_of_another_account_is_refused_and_changes_nothing(
    store: Store, taken: str
) -> None:
    await accounts(store, "u1", "u2")
    await ip_change(store, "u2", registration(IP_C), expected_version=0)
    await ip_change(store, "u1", registration(IP_A), expected_version=0)
    await login(store, "s1", "u1", ip=IP_A)
    new = (
        registration(IP_C, IP_B, version=2)
        if taken == "primary"
        else registration(IP_B, IP_C, version=2)
    )

    with pytest.raises(Refused) as exc:
        await ip_change(store, "u1", new, expected_version=1)
    assert reason(exc) is Reason.IP_TAKEN
    assert await store.get_registration("u1") == registration(IP_A)
    assert await store.get_registration("u2") == registration(IP_C)
    assert await is_live(store, "s1")


@pytest.mark.parametrize(
    ("held", "wanted"),
    [("::ffff:203.0.113.30", "203.0.113.30"), ("203.0.113.30", "::ffff:203.0.113.30")],
)
async def test_uniqueness_uses_the_canonical_form(store: Store, held: str, wanted: str) -> None:
    # SPEC §4: ::ffff:a.b.c.d is a.b.c.d, whichever form a caller passed in.
    await accounts(store, "u1", "u2")
    await ip_change(store, "u2", registration(held), expected_version=0)
    with pytest.raises(Refused) as exc:
        await ip_change(store, "u1", registration(wanted), expected_version=0)
    assert reason(exc) is Reason.IP_TAKEN


async def test_ip_change_answers_what_the_store_did(store: Store) -> None:
    await accounts(store, "u1", "u2")
    held = registration("::ffff:203.0.113.30")
    applied = await store.apply_ip_change("u2", held, expected_version=0)
    assert applied == IpCommitted(IpCommit.APPLIED)
    moved = await store.apply_ip_change("u1", registration(IP_B), expected_version=1)
    assert moved == IpCommitted(IpCommit.VERSION_MOVED)
    wanted = registration(IP_A, "203.0.113.30")
    taken = await store.apply_ip_change("u1", wanted, expected_version=0)
    assert taken == IpCommitted(IpCommit.TAKEN, "203.0.113.30")  # canonical, as stored
    assert await store.get_registration("u1") == Registration()


async def test_ip_of_another_familys_parent_is_refused(store: Store) -> None:
    await accounts(store, "p1", "m1", "p2")
    await family(store, "p1", "m1")
    await ip_change(store, "p1", registration(IP_A), expected_version=0)
    with pytest.raises(Refused) as exc:
        await ip_change(store, "p2", registration(IP_A), expected_version=0)
    assert reason(exc) is Reason.IP_TAKEN


async def test_ip_held_by_a_family_member_is_allowed(store: Store) -> None:
    await accounts(store, "parent", "member")
    await ip_change(store, "member", registration(IP_A), expected_version=0)
    await family(store, "parent", "member")

    await ip_change(store, "parent", registration(IP_A, IP_B), expected_version=0)
    assert await store.get_registration("parent") == registration(IP_A, IP_B)


async def test_ip_change_revokes_the_account_and_its_family_and_clears_slots(
    store: Store,
) -> None:
    await accounts(store, "parent", "member", "other")
    await family(store, "parent", "member")
    await ip_change(store, "parent", registration(IP_A, IP_B), expected_version=0)
    await ip_change(store, "other", registration(IP_C), expected_version=0)
    await login(store, "p1", "parent", ip=IP_A, slot="primary")
    await login(store, "p2", "parent", ip=IP_B, slot="secondary")
    await login(store, "m1", "member", ip=IP_A, slot="primary")
    await login(store, "o1", "other", ip=IP_C, slot="primary")

    await ip_change(store, "parent", registration(IP_A, IP_V6, version=2), expected_version=1)

    for session_id in ("p1", "p2", "m1"):
        assert not await is_live(store, session_id), session_id
    fresh = await login(store, "m2", "member", ip=IP_A, slot="primary")
    assert fresh.registration == registration(IP_A, IP_V6, version=2)
    assert dict(fresh.slot_holders) == {"primary": "m2"}
    parent = await login(store, "p3", "parent", ip=IP_V6, slot="secondary")
    assert dict(parent.slot_holders) == {"secondary": "p3"}
    assert await is_live(store, "o1")


# families --------------------------------------------------------------------------------


async def test_added_member_is_listed_and_points_at_its_parent(store: Store) -> None:
    await accounts(store, "parent", "m1", "m2")
    await family(store, "parent", "m2", "m1")

    members = await store.family_members("parent")
    assert sorted(m.user_id for m in members) == ["m1", "m2"]
    assert all(m.parent_id == "parent" for m in members)
    member = await store.get_account("m1")
    assert member is not None
    assert member.parent_id == "parent"
    assert list(await store.family_members("m1")) == []


async def test_removed_member_leaves_the_family(store: Store) -> None:
    await accounts(store, "parent", "m1")
    await family(store, "parent", "m1")

    assert await store.remove_family_member("parent", "m1") is True
    assert list(await store.family_members("parent")) == []
    member = await store.get_account("m1")
    assert member is not None
    assert member.parent_id is None
    assert await store.remove_family_member("parent", "m1") is False


async def test_remove_from_another_parent_is_false(store: Store) -> None:
    await accounts(store, "p1", "p2", "m1")
    await family(store, "p1", "m1")
    assert await store.remove_family_member("p2", "m1") is False
    assert [m.user_id for m in await store.family_members("p1")] == ["m1"]


async def test_family_is_capped_at_max_members(store: Store) -> None:
    await accounts(store, "parent", "m1", "m2", "m3")
    await family(store, "parent", "m1", "m2", max_members=2)
    with pytest.raises(Refused) as exc:
        await join(store, "parent", "m3", max_members=2)
    assert reason(exc) is Reason.CONFLICT
    assert sorted(m.user_id for m in await store.family_members("parent")) == ["m1", "m2"]


@pytest.mark.parametrize(
    ("parent_id", "member_id", "expected"),
    [
        ("p2", "m1", Reason.CONFLICT),  # m1 is already in p1's family
        ("p2", "p1", Reason.CONFLICT),  # p1 is a parent: it cannot join another family
        ("m1", "p2", Reason.CONFLICT),  # m1 is a member: it cannot become a parent
        ("p2", "p2", Reason.BAD_REQUEST),
        ("p2", "ghost", Reason.NOT_FOUND),
        ("ghost", "p2", Reason.NOT_FOUND),
    ],
)
async def test_an_account_is_in_at_most_one_family(
    store: Store, parent_id: str, member_id: str, expected: Reason
) -> None:
    await accounts(store, "p1", "m1", "p2")
    await family(store, "p1", "m1")
    with pytest.raises(Refused) as exc:
        await join(store, parent_id, member_id, max_members=10)
    assert reason(exc) is expected
    assert [m.user_id for m in await store.family_members("p1")] == ["m1"]
    assert list(await store.family_members("p2")) == []


async def test_join_facts_are_what_the_rule_decides_from(store: Store) -> None:
    await accounts(store, "p1", "m1", "p2", "m2")
    await family(store, "p1", "m1")
    await family(store, "p2", "m2")
    assert await store.join_facts("p1", "p2") == JoinFacts(True, None, True, None, 1, 1)
    assert await store.join_facts("m1", "m2") == JoinFacts(True, "p1", True, "p2", 0, 0)
    assert await store.join_facts("ghost", "m1") == JoinFacts(False, None, True, "p1", 0, 0)
    assert await store.join_facts("p1", "ghost") == JoinFacts(True, None, False, None, 0, 1)


async def test_a_join_decided_on_facts_that_moved_is_stale_and_writes_nothing(
    store: Store,
) -> None:
    await accounts(store, "parent", "m1", "m2", "other")
    decided = await store.join_facts("parent", "m1")
    await family(store, "parent", "m2")  # the family grew after the decision
    await login(store, "s1", "m1")

    stale = await store.add_family_member("parent", "m1", expected=decided)
    assert stale is Commit.STALE
    assert [m.user_id for m in await store.family_members("parent")] == ["m2"]
    assert (await get(store, "m1")).parent_id is None
    assert await is_live(store, "s1")

    moved = await store.join_facts("parent", "m1")
    assert await store.add_family_member("parent", "m1", expected=moved) is Commit.DONE
    assert not await is_live(store, "s1")
    # The member joined elsewhere meanwhile: the parent's count is the same, the member's not.
    decided = await store.join_facts("other", "m1")
    await store.remove_family_member("parent", "m1")
    assert await store.add_family_member("other", "m1", expected=decided) is Commit.STALE


# consent, reserved addresses and the change period (SPEC §9) ------------------------------


async def test_a_members_own_addresses_stay_reserved_to_it_while_in_the_family(
    store: Store,
) -> None:
    await accounts(store, "parent", "member", "outsider")
    await ip_change(store, "member", registration(IP_C), expected_version=0)
    await family(store, "parent", "member")

    taken = await store.apply_ip_change("outsider", registration(IP_C), expected_version=0)
    assert taken == IpCommitted(IpCommit.TAKEN, IP_C)
    shared = await store.apply_ip_change("parent", registration(IP_C), expected_version=0)
    assert shared == IpCommitted(IpCommit.APPLIED)  # the parent may


async def test_leaving_frees_the_addresses_but_keeps_the_last_change(store: Store) -> None:
    await accounts(store, "parent", "member", "outsider")
    await ip_change(store, "member", registration(IP_C, IP_V6), expected_version=0)
    await family(store, "parent", "member")

    assert await store.remove_family_member("parent", "member") is True
    left = await store.get_registration("member")
    assert (left.primary, left.secondary) == (None, None)
    assert left.changed_at == T0  # its change period keeps running from its own last change
    assert left.version == 2
    freed = await store.apply_ip_change("outsider", registration(IP_C), expected_version=0)
    assert freed == IpCommitted(IpCommit.APPLIED)


async def test_an_invitation_changes_nothing_until_it_is_accepted(store: Store) -> None:
    await accounts(store, "parent", "member")
    await ip_change(store, "member", registration(IP_C), expected_version=0)
    await login(store, "s1", "member", ip=IP_C)

    await store.invite("parent", "member", at=T0)
    await store.invite("parent", "nobody", at=T0)  # an unknown id is invited all the same
    assert await is_live(store, "s1")
    assert (await get(store, "member")).parent_id is None
    assert await store.get_registration("member") == registration(IP_C)
    assert list(await store.invitations("member")) == [Invitation("parent", "Account parent", T0)]
    facts = await store.join_facts("parent", "member")
    assert facts.invited_at == T0

    # A join uses the invitation up.
    assert await store.add_family_member("parent", "member", expected=facts) is Commit.DONE
    assert list(await store.invitations("member")) == []
    assert (await store.join_facts("parent", "member")).invited_at is None


async def test_invitations_are_renewed_listed_oldest_first_and_declined(store: Store) -> None:
    await accounts(store, "p1", "p2", "member")
    await store.invite("p2", "member", at=T0)
    await store.invite("p1", "member", at=T0)
    await store.invite("p2", "member", at=LATER)  # renewed: it lasts from now

    assert [(i.parent_id, i.invited_at) for i in await store.invitations("member")] == [
        ("p1", T0),
        ("p2", LATER),
    ]
    assert await store.drop_invitation("p1", "member") is True
    assert await store.drop_invitation("p1", "member") is False
    assert [i.parent_id for i in await store.invitations("member")] == ["p2"]
    assert list(await store.invitations("p1")) == []


async def test_a_join_decided_on_an_invitation_that_was_declined_is_stale(store: Store) -> None:
    await accounts(store, "parent", "member")
    await store.invite("parent", "member", at=T0)
    decided = await store.join_facts("parent", "member")
    await store.drop_invitation("parent", "member")

    assert await store.add_family_member("parent", "member", expected=decided) is Commit.STALE
    assert (await get(store, "member")).parent_id is None
