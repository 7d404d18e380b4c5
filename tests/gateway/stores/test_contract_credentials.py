"""The Credentials role: login sessions, slots and snapshots (SPEC §5).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from gateway.stores.base import (
    Store,
)
from rules.decisions import Reason, Refused
from rules.registry import Registration
from rules.sessions import admit_order
from rules.types import CredentialKind

from .values import (
    IP_A,
    IP_B,
    IP_C,
    IP_V6,
    LATER,
    account,
    accounts,
    credential,
    family,
    ip_change,
    is_live,
    login,
    reason,
    registration,
    token,
)

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
    # Its own registration stays, reserving IP_C to it while it is in the family (SPEC §9).
    assert await store.get_registration("member") == registration(IP_C)


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


async def test_sessions_of_lists_the_accounts_unrevoked_credentials_and_slots(
    store: Store,
) -> None:
    await accounts(store, "u1", "u2")
    first = credential("s1", "u1", slot="primary")
    console = replace(credential("s2", "u1", slot=None), created_at=LATER)
    ended = credential("s3", "u1", slot=None)
    for cred in (first, console, ended, credential("x1", "u2")):
        await store.create_credential(cred, token(cred.session_id))
    await store.revoke_credential("s3")

    found, slots = await store.sessions_of("u1")
    assert found == [first, console]
    assert slots == {"primary": "s1"}

    await store.revoke_account("u1")
    assert await store.sessions_of("u1") == ([], {})
    assert [c.session_id for c in (await store.sessions_of("u2"))[0]] == ["x1"]
