"""An account's egress address, broker sessions and broker client code (SPEC §14): stored,
seen by the next snapshot, the egress inherited by family members.

Written against the interface only; ``store`` is parametrized over every implementation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from gateway.stores.base import BrokerSession, Store

from .values import T0, account, accounts, family, get, login, token


async def test_egress_is_stored_with_the_account_and_read_back(store: Store) -> None:
    await store.create_account(replace(account("u1"), egress_ip="127.0.0.2"))
    assert (await get(store, "u1")).egress_ip == "127.0.0.2"
    assert [a.egress_ip for a in await store.list_accounts()] == ["127.0.0.2"]


async def test_set_and_clear_move_the_next_snapshot(store: Store) -> None:
    await accounts(store, "u1")
    snap = await login(store, "s1", "u1")
    assert snap.egress_ip is None

    assert await store.set_egress("u1", "127.0.0.3") is True
    fresh = await store.snapshot(token("s1"))
    assert fresh is not None
    assert (fresh.egress_ip, fresh.account.egress_ip) == ("127.0.0.3", "127.0.0.3")
    assert (await get(store, "u1")).egress_ip == "127.0.0.3"

    assert await store.set_egress("u1", None) is True
    cleared = await store.snapshot(token("s1"))
    assert cleared is not None
    assert cleared.egress_ip is None
    assert (await get(store, "u1")).egress_ip is None


async def test_unknown_account_is_false_and_nothing_is_created(store: Store) -> None:
    assert await store.set_egress("ghost", "127.0.0.2") is False
    assert await store.get_account("ghost") is None


async def test_members_use_the_parents_unless_they_have_their_own(store: Store) -> None:
    await accounts(store, "p", "m1", "m2")
    await family(store, "p", "m1", "m2")
    m1 = await login(store, "s1", "m1")
    m2 = await login(store, "s2", "m2")
    assert (m1.egress_ip, m2.egress_ip) == (None, None)

    await store.set_egress("p", "127.0.0.2")  # the parent's change reaches cached snapshots
    await store.set_egress("m2", "127.0.0.3")
    m1_now = await store.snapshot(token("s1"))
    m2_now = await store.snapshot(token("s2"))
    assert m1_now is not None and m2_now is not None
    assert (m1_now.egress_ip, m2_now.egress_ip) == ("127.0.0.2", "127.0.0.3")
    assert m1_now.account.egress_ip is None  # inherited, not copied onto the member

    await store.set_egress("p", None)
    m1_after = await store.snapshot(token("s1"))
    assert m1_after is not None
    assert m1_after.egress_ip is None


# broker sessions and the broker's client code (SPEC §14) ---------------------------------------

HELD = BrokerSession(
    headers={"Auth": "broker-token", "Sid": "broker-sid"},
    since=T0,
    expires_at=T0 + timedelta(hours=18),
    base_url="https://e21.example",
    registration_version=2,
    egress_ip="127.0.0.2",
)


async def test_a_broker_session_is_kept_seen_by_the_next_snapshot_and_ended(store: Store) -> None:
    await accounts(store, "u1")
    await login(store, "s1", "u1")
    assert await store.set_broker_session("u1", "kotak", HELD) is True
    snap = await store.snapshot(token("s1"))
    assert snap is not None
    assert snap.account.broker_sessions == {"kotak": HELD}
    assert dict(snap.account.broker_sessions["kotak"].headers) == {
        "Auth": "broker-token",
        "Sid": "broker-sid",
    }
    assert (await get(store, "u1")).broker_sessions == {"kotak": HELD}

    assert await store.set_broker_session("u1", "kotak", None) is True
    ended = await store.snapshot(token("s1"))
    assert ended is not None
    assert ended.account.broker_sessions == {}


async def test_broker_sessions_are_per_dialect(store: Store) -> None:
    await accounts(store, "u1")
    upstox = replace(HELD, headers={"Authorization": "Bearer b"}, base_url=None)
    await store.set_broker_session("u1", "kotak", HELD)
    await store.set_broker_session("u1", "upstox", upstox)
    await store.set_broker_session("u1", "kotak", None)
    assert (await get(store, "u1")).broker_sessions == {"upstox": upstox}


async def test_broker_user_id_is_set_and_cleared(store: Store) -> None:
    await accounts(store, "u1")
    assert await store.set_broker_user_id("u1", "XY9876") is True
    assert (await get(store, "u1")).broker_user_id == "XY9876"
    assert await store.set_broker_user_id("u1", None) is True
    assert (await get(store, "u1")).broker_user_id is None


async def test_unknown_accounts_are_false(store: Store) -> None:
    assert await store.set_broker_session("ghost", "kotak", HELD) is False
    assert await store.set_broker_user_id("ghost", "X") is False
    assert await store.get_account("ghost") is None
