"""The Store contract (SPEC §4, §5, §9, §10, §11): what every implementation must do.

Written against the abstract interface only; ``store`` is parametrized over the
implementations in ``conftest.STORES``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.api.analytics import issue
from gateway.api.family import join
from gateway.api.tokens import replace_allowlist
from gateway.stores.base import (
    Account,
    ApiToken,
    App,
    AuditEntry,
    Commit,
    Duplicate,
    IdempotencyRecord,
    Store,
)
from rules.decisions import Reason, Refused
from rules.family import JoinFacts
from rules.orders import KnownOrder
from rules.registry import IpCommit, IpCommitted, Registration
from rules.sessions import Credential, admit_order, check_live
from rules.types import CredentialKind, IPNetwork, Side

from .values import (
    LATER,
    T0,
    account,
    credential,
    family,
    idem,
    ip_change,
    login,
    registration,
    token,
)

IP_A = "203.0.113.10"
IP_B = "203.0.113.20"
IP_C = "198.51.100.7"
IP_V6 = "2001:db8::7"


async def accounts(store: Store, *user_ids: str) -> None:
    for user_id in user_ids:
        await store.create_account(account(user_id))


async def is_live(store: Store, session_id: str) -> bool:
    """What admission sees: a credential that is gone or revoked fails rules.check_live."""
    snap = await store.snapshot(token(session_id))
    try:
        check_live(None if snap is None else snap.credential, now=LATER)
    except Refused as exc:
        refused = exc.refusal.reason
    else:
        return True
    assert refused is Reason.INVALID_TOKEN
    return False


def reason(exc: pytest.ExceptionInfo[Refused]) -> Reason:
    return exc.value.refusal.reason


async def test_ping_answers_when_started(store: Store) -> None:
    await store.ping()


# accounts and apps -----------------------------------------------------------------------


async def test_created_account_reads_back(store: Store) -> None:
    created = await store.create_account(account("u1", "Asha"))
    assert created == account("u1", "Asha")
    assert await store.get_account("u1") == account("u1", "Asha")


async def test_unknown_account_is_none_until_created(store: Store) -> None:
    assert await store.get_account("u1") is None
    await accounts(store, "u1")
    assert await store.get_account("u1") == account("u1")


async def test_duplicate_account_raises_duplicate_and_keeps_the_first(store: Store) -> None:
    await store.create_account(account("u1", "first"))
    with pytest.raises(Duplicate):
        await store.create_account(account("u1", "second"))
    assert await store.get_account("u1") == account("u1", "first")


async def test_algo_id_and_name_are_stored_set_and_cleared(store: Store) -> None:
    named = replace(account("u1"), algo_id="ALGO-1", algo_name="Pairs")
    await store.create_account(named)
    assert await store.get_account("u1") == named
    snap = await login(store, "s1", "u1")
    assert (snap.account.algo_id, snap.account.algo_name) == ("ALGO-1", "Pairs")

    assert await store.set_algo("u1", algo_id="ALGO-2", algo_name="Momentum") is True
    fresh = await store.snapshot(token("s1"))  # the next snapshot carries the new algo
    assert fresh is not None
    assert (fresh.account.algo_id, fresh.account.algo_name) == ("ALGO-2", "Momentum")
    assert await store.set_algo("u1", algo_id=None, algo_name=None) is True
    assert await store.get_account("u1") == account("u1")
    assert await store.set_algo("nobody", algo_id="A", algo_name=None) is False
    assert await store.get_account("nobody") is None


async def test_list_accounts_lists_every_account(store: Store) -> None:
    assert list(await store.list_accounts()) == []
    await accounts(store, "u2", "u1", "u3")
    listed = await store.list_accounts()
    assert sorted(a.user_id for a in listed) == ["u1", "u2", "u3"]
    assert account("u2") in listed


async def test_created_app_reads_back(store: Store) -> None:
    await accounts(store, "u1")
    app = App(api_key="key-1", user_id="u1", secret_hash="sha256:abc", created_at=T0)
    assert await store.create_app(app) == app
    assert await store.get_app("key-1") == app
    assert await store.get_app("key-2") is None


# stored upstream credentials (SPEC §10) ---------------------------------------------------

UPSTOX_AUTH = {"Authorization": "Bearer broker-secret-1"}
KOTAK_AUTH = {"Authorization": "kotak-token", "Sid": "kotak-sid"}


async def test_upstream_auth_is_set_replaced_and_cleared_per_dialect(store: Store) -> None:
    await accounts(store, "u1", "u2")
    assert dict((await get(store, "u1")).upstream_auth) == {}

    await store.set_upstream_auth("u1", "upstox", UPSTOX_AUTH)
    await store.set_upstream_auth("u1", "kotak", KOTAK_AUTH)
    assert (await get(store, "u1")).upstream_auth == {"upstox": UPSTOX_AUTH, "kotak": KOTAK_AUTH}

    replaced = {"Api-Key": "k2"}
    await store.set_upstream_auth("u1", "upstox", replaced)
    assert (await get(store, "u1")).upstream_auth == {"upstox": replaced, "kotak": KOTAK_AUTH}

    await store.set_upstream_auth("u1", "upstox", None)
    await store.set_upstream_auth("u1", "paradex", None)  # clearing what is not there is fine
    assert (await get(store, "u1")).upstream_auth == {"kotak": KOTAK_AUTH}
    assert (await get(store, "u2")).upstream_auth == {}
    listed = {a.user_id: a.upstream_auth for a in await store.list_accounts()}
    assert listed == {"u1": {"kotak": KOTAK_AUTH}, "u2": {}}


async def test_upstream_auth_keeps_header_order_and_values_exactly(store: Store) -> None:
    await accounts(store, "u1")
    headers = {"X-B": "2", "x-a": 'caf\u00e9 \t/\\"', "Authorization": "Bearer " + "z" * 4000}
    await store.set_upstream_auth("u1", "upstox", headers)
    stored = (await get(store, "u1")).upstream_auth["upstox"]
    assert list(stored.items()) == list(headers.items())


async def test_upstream_auth_of_an_unknown_account_is_not_found(store: Store) -> None:
    assert await store.set_upstream_auth("nobody", "upstox", UPSTOX_AUTH) is False
    assert await store.set_upstream_auth("nobody", "upstox", None) is False
    assert await store.get_account("nobody") is None
    await accounts(store, "u1")
    assert await store.set_upstream_auth("u1", "upstox", None) is True


async def test_the_next_snapshot_carries_the_new_upstream_auth(store: Store) -> None:
    await accounts(store, "u1")
    cached = await login(store, "s1", "u1")
    assert await store.snapshot(token("s1")) == cached  # warm any cache
    assert cached.account.upstream_auth == {}

    await store.set_upstream_auth("u1", "upstox", UPSTOX_AUTH)
    after_set = await store.snapshot(token("s1"))
    assert after_set is not None
    assert after_set.account.upstream_auth == {"upstox": UPSTOX_AUTH}
    await store.verify(after_set)  # current, so the order path admits it
    assert await store.admit(after_set, now=1.0, limit=10) is None

    await store.set_upstream_auth("u1", "upstox", None)
    after_clear = await store.snapshot(token("s1"))
    assert after_clear is not None
    assert after_clear.account.upstream_auth == {}
    assert after_clear.credential == cached.credential  # the session itself lives on


async def test_upstream_auth_of_a_family_member_is_its_own(store: Store) -> None:
    await accounts(store, "parent", "member")
    await family(store, "parent", "member")
    await store.set_upstream_auth("parent", "upstox", UPSTOX_AUTH)
    snap = await login(store, "m1", "member")
    assert snap.account.upstream_auth == {}
    await store.set_upstream_auth("member", "upstox", {"Authorization": "Bearer member"})
    fresh = await store.snapshot(token("m1"))
    assert fresh is not None
    assert fresh.account.upstream_auth == {"upstox": {"Authorization": "Bearer member"}}
    assert fresh.account.parent_id == "parent"


async def test_upstream_auth_values_stay_out_of_repr(store: Store) -> None:
    await accounts(store, "u1")
    await store.set_upstream_auth("u1", "upstox", UPSTOX_AUTH)
    snap = await login(store, "s1", "u1")
    assert "broker-secret-1" not in repr(snap)
    assert "broker-secret-1" not in repr(await store.list_accounts())


async def get(store: Store, user_id: str) -> Account:
    found = await store.get_account(user_id)
    assert found is not None
    return found


# credentials and snapshots ---------------------------------------------------------------


async def test_unknown_token_has_no_snapshot(store: Store) -> None:
    assert await store.snapshot(token("nobody")) is None


async def test_snapshot_carries_credential_account_registration_and_slot(store: Store) -> None:
    await accounts(store, "u1")
    await ip_change(store, "u1", registration(IP_A, IP_B), expected_version=0)
    cred = credential("s1", "u1", ip=IP_B, slot="secondary")
    assert await store.create_credential(cred, token("s1")) == cred

    snap = await store.snapshot(token("s1"))
    assert snap is not None
    assert snap.credential == cred
    assert snap.account == account("u1")
    assert snap.registration == registration(IP_A, IP_B)
    assert dict(snap.slot_holders) == {"secondary": "s1"}


async def test_credential_fields_round_trip(store: Store) -> None:
    await accounts(store, "u1")
    cred = credential("t1", "u1", ip=IP_V6, slot=None, kind=CredentialKind.API_TOKEN)
    cred = replace(
        cred,
        allowed_cidrs=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")),
    )
    await store.create_credential(cred, token("t1"))
    snap = await store.snapshot(token("t1"))
    assert snap is not None
    assert snap.credential == cred
    assert dict(snap.slot_holders) == {}


async def test_unregistered_account_has_an_empty_registration(store: Store) -> None:
    await accounts(store, "u1")
    snap = await login(store, "s1", "u1")
    assert snap.registration == Registration()
    assert await store.get_registration("u1") == Registration()


async def test_family_member_snapshot_carries_the_parents_registration(store: Store) -> None:
    await accounts(store, "parent", "member")
    await ip_change(store, "member", registration(IP_C), expected_version=0)
    await family(store, "parent", "member")
    await ip_change(store, "parent", registration(IP_A, IP_B), expected_version=0)

    snap = await login(store, "m1", "member", ip=IP_A)
    assert snap.account.parent_id == "parent"
    assert snap.registration == registration(IP_A, IP_B)
    # Joining released the member's own registration: IP_C is no longer held by anyone.
    assert (await store.get_registration("member")).ips == frozenset()


async def test_newer_session_from_an_ip_takes_its_slot(store: Store) -> None:
    await accounts(store, "u1")
    await ip_change(store, "u1", registration(IP_A, IP_B), expected_version=0)
    await login(store, "old", "u1", ip=IP_A, slot="primary")
    await login(store, "other", "u1", ip=IP_B, slot="secondary")
    await login(store, "new", "u1", ip=IP_A, slot="primary")

    old = await store.snapshot(token("old"))
    assert old is not None
    assert dict(old.slot_holders) == {"primary": "new", "secondary": "other"}
    with pytest.raises(Refused) as exc:
        admit_order(
            old.credential,
            now=LATER,
            client_ip=ipaddress.ip_address(IP_A),
            registration=old.registration,
            slot_holder=old.slot_holders.get("primary"),
        )
    assert reason(exc) is Reason.SLOT_TAKEN
    # Losing the slot is not a logout: the old session's other APIs keep working.
    assert await is_live(store, "old")


async def test_slots_are_per_account(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await login(store, "a", "u1")
    snap = await login(store, "b", "u2")
    assert dict(snap.slot_holders) == {"primary": "b"}
    a = await store.snapshot(token("a"))
    assert a is not None
    assert dict(a.slot_holders) == {"primary": "a"}


async def test_revoke_credential_ends_only_that_session(store: Store) -> None:
    await accounts(store, "u1")
    await login(store, "s1", "u1", slot="primary")
    await login(store, "s2", "u1", slot="secondary")

    assert await store.revoke_credential("s1") is True
    assert await store.revoke_credential("s1") is False
    assert not await is_live(store, "s1")
    assert await is_live(store, "s2")


async def test_revoke_unknown_credential_is_false(store: Store) -> None:
    assert await store.revoke_credential("nope") is False


async def test_revoke_account_ends_every_session_of_that_account_only(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await login(store, "a1", "u1", slot="primary")
    await login(store, "a2", "u1", slot="secondary")
    await login(store, "b1", "u2")
    await store.revoke_credential("a2")

    assert await store.revoke_account("u1") == 1  # a2 was no longer live
    assert not await is_live(store, "a1")
    assert not await is_live(store, "a2")
    assert await is_live(store, "b1")
    assert await store.revoke_account("u1") == 0


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


# known orders ----------------------------------------------------------------------------


async def test_remembered_order_is_known(store: Store) -> None:
    order = KnownOrder(order_id="o-1", user_id="u1", instrument_key="NSE_EQ|X", side=Side.SELL)
    assert await store.known_order("o-1") is None
    await store.remember_order(order)
    assert await store.known_order("o-1") == order
    assert await store.known_order("o-2") is None


# idempotency -----------------------------------------------------------------------------


async def test_begin_claims_once_then_returns_the_claim(store: Store) -> None:
    assert await store.begin_idempotent(idem("u1", "k1", "h1")) is None
    existing = await store.begin_idempotent(idem("u1", "k1", "h2"))
    assert existing == IdempotencyRecord(user_id="u1", key="k1", body_hash="h1", status=None)


async def test_keys_are_per_account(store: Store) -> None:
    assert await store.begin_idempotent(idem("u1", "k1")) is None
    assert await store.begin_idempotent(idem("u2", "k1")) is None


async def test_finished_record_is_returned_to_a_repeat(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1", "h1"))
    done = IdempotencyRecord(
        user_id="u1",
        key="k1",
        body_hash="h1",
        status=200,
        headers={"Content-Type": "application/json", "X-Gateway-LTP": "101.5"},
        body=b'{"status":"success","data":{"order_id":"o-1"}}\x00\xff',
    )
    await store.finish_idempotent(done)
    assert await store.begin_idempotent(idem("u1", "k1", "h1")) == done


async def test_release_drops_an_unfinished_claim(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1"))
    await store.release_idempotent(idem("u1", "k1"))
    assert await store.begin_idempotent(idem("u1", "k1", "h2")) is None


async def test_release_keeps_a_finished_record(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1"))
    done = IdempotencyRecord(user_id="u1", key="k1", body_hash="h1", status=201, body=b"{}")
    await store.finish_idempotent(done)
    await store.release_idempotent(idem("u1", "k1"))
    assert await store.begin_idempotent(idem("u1", "k1")) == done


# audit -----------------------------------------------------------------------------------


async def test_audit_query_is_newest_first_filtered_and_limited(store: Store) -> None:
    records = [
        {"at": f"2026-04-06 09:15:0{i}", "user_id": user, "decision": "admit", "n": i}
        for i, user in enumerate(["u1", "u2", "u1", "u1"])
    ]
    for record in records:
        store.audit(AuditEntry.of(record))

    assert list(await store.audit_query(user_id=None, limit=10)) == records[::-1]
    assert list(await store.audit_query(user_id="u1", limit=10)) == [
        records[3],
        records[2],
        records[0],
    ]
    assert list(await store.audit_query(user_id="u1", limit=2)) == [records[3], records[2]]
    assert list(await store.audit_query(user_id="u3", limit=10)) == []


async def test_audit_keeps_records_without_a_user(store: Store) -> None:
    record = {"at": "2026-04-06 09:15:00", "user_id": None, "decision": "refuse"}
    store.audit(AuditEntry.of(record))
    assert list(await store.audit_query(user_id=None, limit=1)) == [record]


# admission rate --------------------------------------------------------------------------


async def test_admit_allows_limit_per_window_then_says_when(store: Store) -> None:
    await accounts(store, "u1", "u2")
    snap = await login(store, "a", "u1")
    other = await login(store, "b", "u2")

    for now in (100.0, 100.1, 100.2):
        assert await store.admit(snap, now=now, limit=3) is None
    retry = await store.admit(snap, now=100.3, limit=3)
    assert retry is not None
    assert 0 < retry <= 1.0
    assert retry == pytest.approx(0.7)
    # Another account has its own window.
    assert await store.admit(other, now=100.3, limit=3) is None
    # The oldest admission leaves the rolling window after one second.
    assert await store.admit(snap, now=101.0, limit=3) is None
    assert await store.admit(snap, now=101.05, limit=3) is not None


async def test_admit_takes_count_slots_at_once_or_none(store: Store) -> None:
    await accounts(store, "u1")
    snap = await login(store, "a", "u1")

    assert await store.admit(snap, now=100.0, limit=4, count=3) is None
    # Two more do not fit in the one slot left: refused whole, and nothing is taken.
    assert await store.admit(snap, now=100.25, limit=4, count=2) == pytest.approx(0.75)
    assert await store.admit(snap, now=100.25, limit=4) is None  # the last slot was still free
    assert await store.admit(snap, now=100.5, limit=4) == pytest.approx(0.5)
    # count == limit fits once the window is empty; count > limit never does.
    assert await store.admit(snap, now=101.25, limit=4, count=4) is None
    assert await store.admit(snap, now=105.0, limit=4, count=5) is not None
    assert await store.admit(snap, now=105.0, limit=4, count=4) is None


# API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9 ---------------

NET_A = ipaddress.ip_network("10.0.0.0/8")
NET_B = ipaddress.ip_network("2001:db8::/32")


async def api_token(
    store: Store,
    lookup_id: str,
    user_id: str = "u1",
    *,
    kind: str = "jwt",
    cidrs: tuple[IPNetwork, ...] = (),
    created_at: datetime = T0,
) -> ApiToken:
    """Create an API token whose session id is ``tok-<lookup_id>``."""
    cred = replace(
        credential(f"tok-{lookup_id}", user_id, slot=None, kind=CredentialKind.API_TOKEN),
        allowed_cidrs=cidrs,
        created_at=created_at,
    )
    created = ApiToken(
        lookup_id=lookup_id,
        token_id=cred.session_id,
        user_id=user_id,
        name=f"token {lookup_id}",
        kind=kind,
        allowed_cidrs=cidrs,
        created_at=created_at,
        expiry_at=cred.expires_at,
        last_updated_at=created_at,
    )
    assert await store.create_api_token(created, cred, token(cred.session_id)) == created
    return created


async def listed(store: Store, user_id: str = "u1", **options: Any) -> list[str]:
    options = {"kind": None, "with_invalid": False, "now": LATER, **options}
    return [t.lookup_id for t in await store.api_tokens(user_id, **options)]


async def test_api_token_reads_back_with_its_allowlisted_credential(store: Store) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1", cidrs=(NET_A, NET_B))

    assert list(await store.api_tokens("u1", kind=None, with_invalid=False, now=LATER)) == [created]
    snap = await store.snapshot(token("tok-l1"))
    assert snap is not None
    assert snap.credential.kind is CredentialKind.API_TOKEN
    assert snap.credential.allowed_cidrs == (NET_A, NET_B)
    assert dict(snap.slot_holders) == {}


async def test_api_tokens_are_per_account_oldest_first_and_filtered_by_kind(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "late", created_at=T0 + timedelta(minutes=5))
    await api_token(store, "b-first", kind="api_key")
    await api_token(store, "a-second")
    await api_token(store, "theirs", "u2")

    assert await listed(store) == ["b-first", "a-second", "late"]
    assert await listed(store, kind="jwt") == ["a-second", "late"]
    assert await listed(store, kind="api_key") == ["b-first"]
    assert await listed(store, "u2") == ["theirs"]
    assert await listed(store, "u3") == []


async def test_revoked_and_expired_api_tokens_are_listed_only_with_invalid(store: Store) -> None:
    await accounts(store, "u1")
    await api_token(store, "live")
    await api_token(store, "revoked")
    await store.revoke_api_token("u1", "revoked", now=LATER)

    assert await listed(store) == ["live"]
    assert await listed(store, with_invalid=True) == ["live", "revoked"]
    expired = T0 + timedelta(days=1)  # every token here expires one day after T0
    assert await listed(store, now=expired) == []
    assert await listed(store, now=expired, with_invalid=True) == ["live", "revoked"]


async def test_revoke_api_token_ends_it_at_once_and_keeps_the_first_revocation_time(
    store: Store,
) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1")
    await api_token(store, "l2")

    revoked = await store.revoke_api_token("u1", "l1", now=LATER)
    assert revoked == replace(created, revoked_at=LATER, last_updated_at=LATER)
    assert not await is_live(store, "tok-l1")
    assert await is_live(store, "tok-l2")
    again = await store.revoke_api_token("u1", "l1", now=LATER + timedelta(minutes=1))
    assert again == revoked


async def test_revoke_api_token_of_another_account_or_unknown_is_none(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "l1")

    assert await store.revoke_api_token("u2", "l1", now=LATER) is None
    assert await store.revoke_api_token("u1", "nope", now=LATER) is None
    assert await is_live(store, "tok-l1")


async def test_token_invalidated_elsewhere_is_listed_revoked_from_its_first_listing(
    store: Store,
) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1")
    await store.revoke_account("u1")  # an admin revocation, or an IP change

    first = await store.api_tokens("u1", kind=None, with_invalid=True, now=LATER)
    assert list(first) == [replace(created, revoked_at=LATER, last_updated_at=LATER)]
    later = LATER + timedelta(hours=1)
    assert list(await store.api_tokens("u1", kind=None, with_invalid=True, now=later)) == list(
        first
    )
    assert await listed(store) == []


async def test_replaced_allowlist_is_seen_by_the_next_snapshot(store: Store) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1", cidrs=(NET_A,))
    before = await store.snapshot(token("tok-l1"))
    assert before is not None

    replaced = await store.replace_api_token_cidrs("u1", "l1", (NET_B,), now=LATER)
    assert replaced == replace(created, allowed_cidrs=(NET_B,), last_updated_at=LATER)
    snap = await store.snapshot(token("tok-l1"))
    assert snap is not None
    assert snap.credential.allowed_cidrs == (NET_B,)
    assert await store.replace_api_token_cidrs("u1", "l1", (), now=LATER) == replace(
        created, allowed_cidrs=(), last_updated_at=LATER
    )
    unrestricted = await store.snapshot(token("tok-l1"))
    assert unrestricted is not None
    assert unrestricted.credential.allowed_cidrs == ()


async def test_replacing_the_allowlist_of_a_revoked_or_expired_token_is_a_conflict(
    store: Store,
) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "revoked", cidrs=(NET_A,))
    await api_token(store, "expires", cidrs=(NET_A,))
    await store.revoke_api_token("u1", "revoked", now=LATER)

    for lookup_id, now in (("revoked", LATER), ("expires", T0 + timedelta(days=1))):
        with pytest.raises(Refused) as exc:
            await replace_allowlist(store, "u1", lookup_id, (NET_B,), now=now)
        assert reason(exc) is Reason.CONFLICT
        # The store's precondition alone: a token that is no longer live is not written.
        assert await store.replace_api_token_cidrs("u1", lookup_id, (NET_B,), now=now) is None
    for user_id, lookup_id in (("u1", "nope"), ("u2", "expires")):
        with pytest.raises(Refused) as exc:
            await replace_allowlist(store, user_id, lookup_id, (NET_B,), now=LATER)
        assert reason(exc) is Reason.NOT_FOUND
        assert await store.replace_api_token_cidrs(user_id, lookup_id, (NET_B,), now=LATER) is None
    tokens = await store.api_tokens("u1", kind=None, with_invalid=True, now=LATER)
    assert [t.allowed_cidrs for t in tokens] == [(NET_A,), (NET_A,)]


def analytics(session_id: str, user_id: str = "u1", *, at: datetime = T0) -> Credential:
    cred = credential(session_id, user_id, slot=None, kind=CredentialKind.ANALYTICS)
    return replace(cred, created_at=at, expires_at=at + timedelta(days=365))


async def test_one_live_analytics_token_per_account(store: Store) -> None:
    await accounts(store, "u1", "u2")
    first = analytics("an1")
    await issue(store, first, token("an1"))
    snap = await store.snapshot(token("an1"))
    assert snap is not None
    assert snap.credential == first
    assert await store.live_analytics_token("u1") == first

    with pytest.raises(Refused) as exc:
        await issue(store, analytics("an2"), token("an2"))
    assert reason(exc) is Reason.CONFLICT
    assert await store.snapshot(token("an2")) is None
    assert await is_live(store, "an1")
    # Another account has its own.
    await issue(store, analytics("other", "u2"), token("other"))
    assert await is_live(store, "other")


async def test_an_analytics_token_decided_on_facts_that_moved_is_stale(store: Store) -> None:
    await accounts(store, "u1")
    # Decided "none to retire", but one was issued meanwhile: nothing is written.
    await issue(store, analytics("an1"), token("an1"))
    late = await store.create_analytics_token(analytics("an2"), token("an2"), retire=None)
    assert late is Commit.STALE
    assert await store.snapshot(token("an2")) is None
    assert await is_live(store, "an1")
    # Decided "retire an1", but an1 was revoked meanwhile: nothing is written either.
    await store.revoke_analytics_token("u1")
    gone = await store.create_analytics_token(analytics("an3"), token("an3"), retire="an1")
    assert gone is Commit.STALE
    assert await store.snapshot(token("an3")) is None
    assert await store.live_analytics_token("u1") is None
    ok = await store.create_analytics_token(analytics("an4"), token("an4"), retire=None)
    assert ok is Commit.DONE
    assert await is_live(store, "an4")


async def test_revoked_analytics_token_can_be_replaced(store: Store) -> None:
    await accounts(store, "u1")
    assert await store.revoke_analytics_token("u1") is False
    await issue(store, analytics("an1"), token("an1"))

    assert await store.revoke_analytics_token("u1") is True
    assert await store.revoke_analytics_token("u1") is False
    assert not await is_live(store, "an1")
    await issue(store, analytics("an2"), token("an2"))
    assert await is_live(store, "an2")


async def test_an_expired_analytics_token_no_longer_counts(store: Store) -> None:
    await accounts(store, "u1")
    await issue(store, analytics("an1"), token("an1"))
    a_year_on = T0 + timedelta(days=365)

    second = analytics("an2", at=a_year_on)
    await issue(store, second, token("an2"))
    assert await store.live_analytics_token("u1") == second
    old = await store.snapshot(token("an1"))
    assert old is not None
    assert old.credential.revoked
    assert await store.revoke_analytics_token("u1") is True
    assert not await is_live(store, "an2")
