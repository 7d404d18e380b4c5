"""The Accounts role: accounts, apps, stored upstream credentials, algo ids, relayed logins.

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.stores.base import (
    App,
    Duplicate,
    LoginStep,
    Store,
)

from .values import (
    T0,
    account,
    accounts,
    family,
    get,
    login,
    token,
)

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


# relayed logins between their two steps (SPEC §14) -----------------------------------------


async def test_a_login_step_is_read_back_until_it_expires(store: Store) -> None:
    expires = T0 + timedelta(minutes=5)
    await store.hold_login_step("view-hash", LoginStep("U1", "203.0.113.7", expires))

    assert await store.login_step("view-hash", now=T0) == LoginStep("U1", "203.0.113.7", expires)
    assert await store.login_step("view-hash", now=expires - timedelta(seconds=1)) is not None
    assert await store.login_step("view-hash", now=expires) is None
    assert await store.login_step("another", now=T0) is None


async def test_a_login_step_is_replaced_by_a_new_hold_and_gone_once_dropped(store: Store) -> None:
    await store.hold_login_step("k", LoginStep("U1", None, T0 + timedelta(minutes=5)))
    await store.hold_login_step("k", LoginStep("U2", "198.51.100.7", T0 + timedelta(minutes=6)))

    held = await store.login_step("k", now=T0)
    assert held is not None and (held.user_id, held.egress) == ("U2", "198.51.100.7")

    await store.drop_login_step("k")
    assert await store.login_step("k", now=T0) is None
    await store.drop_login_step("k")  # dropping what is gone is no error
