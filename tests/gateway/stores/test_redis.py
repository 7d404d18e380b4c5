"""Redis specifics (SPEC §7, §11, §12): two stores on one prefix stand for two gateway
instances; a write on one makes the other's cached snapshots stale before it answers; the rate
limit holds across both; one round trip per admission; fail closed when Redis is gone."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis

from gateway.config_values import redis_url_parts as parse_url
from gateway.stores.base import ApiToken, AuditEntry, Snapshot, StaleSnapshot, StoreUnavailable
from gateway.stores.redis import RedisStore
from gateway.stores.redis.audit import WRITE_AUDIT
from rules.decisions import Refused
from rules.orders import KnownOrder
from rules.ratelimit import SlidingWindowLimiter
from rules.registry import Registration
from rules.sessions import check_live
from rules.types import CredentialKind, Side

from .conftest import REDIS_URL, delete_prefix, redis_url, unique_prefix
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

pytestmark = pytest.mark.redis

IP_A = "203.0.113.10"
IP_B = "203.0.113.20"
IP_C = "198.51.100.7"


class Counting(aioredis.Connection):
    """A connection that counts what it writes: one write is one round trip (a pipeline's
    commands go out in one write)."""

    writes: ClassVar[list[int]] = [0]

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        Counting.writes[0] += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Instances A and B of the gateway: two stores, two caches, one prefix."""
    prefix = unique_prefix()
    a = RedisStore.from_url(redis_url(prefix), connection_class=Counting)
    b = RedisStore.from_url(redis_url(prefix))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await delete_prefix(prefix)


async def round_trips(store: RedisStore, call: Any) -> tuple[Any, int]:
    """The result of awaiting ``call`` and the writes it took, on a warm connection."""
    await store.ping()
    before = Counting.writes[0]
    result = await call
    return result, Counting.writes[0] - before


def test_url_gives_the_prefix_and_passes_everything_else_to_redis() -> None:
    assert parse_url("redis://127.0.0.1:6379/3?prefix=gw1:&socket_timeout=2") == (
        "redis://127.0.0.1:6379/3?socket_timeout=2",
        "gw1:",
    )
    assert parse_url("rediss://:pw@redis.internal:6380/0") == (
        "rediss://:pw@redis.internal:6380/0",
        "og:",
    )
    with pytest.raises(ValueError, match="prefix"):
        parse_url("redis://127.0.0.1/0?prefix=")


# one instance's write, seen by the other before the write answers ------------------------


async def test_revocation_on_b_makes_as_cached_snapshot_stale(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    await a.create_account(account("u1"))
    cached = await login(a, "s1", "u1")
    assert await a.snapshot(token("s1")) is cached  # served from A's cache

    assert await b.revoke_credential("s1") is True

    with pytest.raises(StaleSnapshot):
        await a.admit(cached, now=100.0, limit=10)
    with pytest.raises(StaleSnapshot):
        await a.verify(cached)
    fresh = await a.snapshot(token("s1"))
    assert fresh is not None
    assert fresh.credential.revoked
    await a.verify(fresh)
    # The refused admission took no rate slot.
    assert await a.admit(fresh, now=100.0, limit=1) is None


async def test_ip_change_on_b_reaches_a_members_snapshot_through_the_parent(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    for user_id in ("parent", "member"):
        await a.create_account(account(user_id))
    await family(a, "parent", "member")
    await ip_change(a, "parent", registration(IP_A), expected_version=0)
    cached = await login(a, "m1", "member", ip=IP_A)
    assert cached.account.parent_id == "parent"

    await ip_change(b, "parent", registration(IP_B, version=2), expected_version=1)

    with pytest.raises(StaleSnapshot):
        await a.admit(cached, now=100.0, limit=10)
    fresh = await a.snapshot(token("m1"))
    assert fresh is not None
    assert fresh.registration == registration(IP_B, version=2)
    assert fresh.credential.revoked


async def test_a_parent_epoch_alone_makes_a_members_snapshot_stale(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    # Belt and braces: even a write that bumped only the parent is caught on a member.
    a, b = pair
    for user_id in ("parent", "member"):
        await a.create_account(account(user_id))
    await family(a, "parent", "member")
    cached = await login(a, "m1", "member")
    await login(b, "p1", "parent")  # takes the parent's slot: bumps only the parent

    with pytest.raises(StaleSnapshot):
        await a.verify(cached)


@pytest.mark.parametrize(
    "write", ["login", "revoke_account", "join", "leave", "cidrs", "upstream_auth"]
)
async def test_every_invalidating_write_on_b_is_caught_on_a(
    pair: tuple[RedisStore, RedisStore], write: str
) -> None:
    a, b = pair
    for user_id in ("u1", "p1", "p2"):
        await a.create_account(account(user_id))
    if write == "leave":
        await family(a, "p1", "u1")
    cached = await login(a, "s1", "u1")
    api = replace(credential("t1", "u1", slot=None, kind=CredentialKind.API_TOKEN))
    meta = ApiToken("l1", "t1", "u1", "n", "jwt", (), T0, api.expires_at, T0)
    await a.create_api_token(meta, api, token("t1"))
    cached_token = await a.snapshot(token("t1"))
    assert cached_token is not None

    if write == "login":
        await login(b, "s2", "u1")
    elif write == "revoke_account":
        await b.revoke_account("u1")
    elif write == "join":
        await family(b, "p2", "u1")
    elif write == "leave":
        await b.remove_family_member("p1", "u1")
    elif write == "cidrs":
        await b.replace_api_token_cidrs("u1", "l1", (), now=LATER)
    else:
        await b.set_upstream_auth("u1", "upstox", {"Authorization": "Bearer x"})

    for snap in (cached, cached_token):
        with pytest.raises(StaleSnapshot):
            await a.admit(snap, now=100.0, limit=10)


async def test_upstream_auth_set_and_cleared_on_b_is_the_next_read_on_a(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    await a.create_account(account("u1"))
    cached = await login(a, "s1", "u1")
    assert await a.snapshot(token("s1")) is cached
    auth = {"Authorization": "Bearer broker-secret"}

    # One script writes the field and moves the epoch: one round trip, nothing in between.
    _, writes = await round_trips(a, a.set_upstream_auth("u1", "kotak", {"Sid": "x"}))
    assert writes == 1
    reread = await a.snapshot(token("s1"))  # A's own write: A re-reads at once
    assert reread is not None and reread is not cached
    assert reread.account.upstream_auth == {"kotak": {"Sid": "x"}}
    cached = reread

    await b.set_upstream_auth("u1", "upstox", auth)
    with pytest.raises(StaleSnapshot):
        await a.verify(cached)  # a read route
    with pytest.raises(StaleSnapshot):
        await a.admit(cached, now=100.0, limit=10)  # an order
    fresh = await a.snapshot(token("s1"))
    assert fresh is not None
    assert fresh.account.upstream_auth == {"kotak": {"Sid": "x"}, "upstox": auth}
    assert fresh.epoch > cached.epoch
    await a.verify(fresh)

    await b.set_upstream_auth("u1", "upstox", None)
    with pytest.raises(StaleSnapshot):
        await a.admit(fresh, now=100.0, limit=10)
    cleared = await a.snapshot(token("s1"))
    assert cleared is not None
    assert cleared.account.upstream_auth == {"kotak": {"Sid": "x"}}
    assert not cleared.credential.revoked  # a credential change ends no session


async def test_upstream_auth_of_an_unknown_account_writes_nothing(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, _ = pair
    assert await a.set_upstream_auth("ghost", "upstox", {"Authorization": "x"}) is False
    assert await a._cmd("EXISTS", f"{a._prefix}account:ghost", f"{a._prefix}epoch:ghost") == 0


async def test_a_session_created_on_b_is_found_on_a_at_once(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    await a.create_account(account("u1"))
    assert await a.snapshot(token("s1")) is None  # not remembered as unknown
    await login(b, "s1", "u1")
    snap = await a.snapshot(token("s1"))
    assert snap is not None
    assert snap.slot_holders == {"primary": "s1"}


async def test_orders_and_audit_written_on_one_are_read_on_the_other(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    order = KnownOrder("o-1", "u1", "NSE_EQ|X", Side.BUY)
    await a.remember_order(order)
    assert await b.known_order("o-1") == order
    a.audit(AuditEntry.of({"at": "1", "user_id": "u1", "n": 1}))
    await a.audit_query(user_id=None, limit=1)  # flushes A's buffer
    b.audit(AuditEntry.of({"at": "2", "user_id": "u1", "n": 2}))
    assert [r["n"] for r in await b.audit_query(user_id="u1", limit=10)] == [2, 1]


# the rate limit across instances ----------------------------------------------------------


async def test_rate_limit_holds_across_both_instances(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    await a.create_account(account("u1"))
    via_a = await login(a, "s1", "u1")
    via_b = await b.snapshot(token("s1"))
    assert via_b is not None

    for i in range(6):
        assert await a.admit(via_a, now=100.0 + i * 0.01, limit=10) is None
    for i in range(4):
        assert await b.admit(via_b, now=100.5 + i * 0.01, limit=10) is None
    assert await a.admit(via_a, now=100.6, limit=10) == pytest.approx(0.4)
    assert await b.admit(via_b, now=100.6, limit=10) == pytest.approx(0.4)
    # Refusals took nothing: the first slot frees when the first admission leaves the window.
    assert await b.admit(via_b, now=101.0, limit=10) is None
    assert await a.admit(via_a, now=101.0, limit=10) is not None


async def test_the_lua_window_agrees_with_the_in_process_limiter(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    # Same decisions and the same Retry-After, to the bit, over bursts and exact boundaries.
    a, _ = pair
    await a.create_account(account("u1"))
    snap = await login(a, "s1", "u1")
    limiter = SlidingWindowLimiter(3, 1.0)
    rng = random.Random(7)
    now = 1_775_000_000.0
    for _ in range(300):
        now += rng.choice([0.0, 0.001, 0.1, 0.25, 0.3, 1.0 / 3, 0.999, 1.0])
        assert await a.admit(snap, now=now, limit=3) == limiter.try_acquire("u1", now), now


async def test_the_lua_window_agrees_with_the_in_process_limiter_on_counts(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    # Requests of several orders (SPEC §7): all or none, the same Retry-After to the bit,
    # including count == limit and count > limit.
    a, _ = pair
    await a.create_account(account("u1"))
    snap = await login(a, "s1", "u1")
    limiter = SlidingWindowLimiter(4, 0.5)
    rng = random.Random(11)
    now = 1_775_000_000.0
    for _ in range(300):
        now += rng.choice([0.0, 0.001, 0.1, 0.125, 1.0 / 7, 0.3, 0.4999, 0.5])
        count = rng.choice([1, 1, 2, 3, 4, 5])
        assert await a.admit(snap, now=now, limit=4, window=0.5, count=count) == (
            limiter.try_acquire("u1", now, count)
        ), (now, count)


async def test_the_window_holds_no_more_than_it_admitted(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, _ = pair
    await a.create_account(account("u1"))
    snap = await login(a, "s1", "u1")
    key = f"{a._prefix}rate:u1"
    assert await a.admit(snap, now=100.0, limit=10, count=7) is None
    assert await a._cmd("ZCARD", key) == 7
    assert await a.admit(snap, now=100.5, limit=10, count=4) is not None
    assert await a._cmd("ZCARD", key) == 7  # a refusal takes nothing
    assert await a.admit(snap, now=101.0, limit=10, count=10) is None
    assert await a._cmd("ZCARD", key) == 10  # the expired seven were removed


# round trips -------------------------------------------------------------------------------


async def test_admit_is_one_round_trip_and_a_cached_snapshot_none(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    await a.create_account(account("u1"))
    await login(b, "s1", "u1")
    await a.admit(await login(a, "s0", "u1", slot="secondary"), now=1.0, limit=10)  # load

    snap, reads = await round_trips(a, a.snapshot(token("s1")))
    assert snap is not None
    assert reads == 1  # credential, account, registration, slots and epochs together
    cached, hits = await round_trips(a, a.snapshot(token("s1")))
    assert (cached, hits) == (snap, 0)
    admitted, admits = await round_trips(a, a.admit(snap, now=2.0, limit=10))
    assert (admitted, admits) == (None, 1)
    _, verifies = await round_trips(a, a.verify(snap))
    assert verifies == 1


async def test_scripts_come_back_after_the_server_forgets_them(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, _ = pair
    await a.create_account(account("u1"))
    snap = await login(a, "s1", "u1")
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    assert await a.admit(snap, now=1.0, limit=10) is None


# housekeeping ------------------------------------------------------------------------------


async def test_credentials_expire_a_day_after_they_do() -> None:
    prefix = unique_prefix()
    now = datetime.now(UTC).replace(microsecond=0)
    store = RedisStore(
        aioredis.Redis.from_url(REDIS_URL), prefix=prefix, wall=lambda: now.timestamp()
    )
    day_ms = 86_400_000
    try:
        await store.create_account(account("u1"))
        live = replace(credential("s1", "u1"), expires_at=now + timedelta(hours=1))
        expired = replace(credential("s2", "u1"), expires_at=now - timedelta(hours=1))
        await store.create_credential(live, token("s1"))
        await store.create_credential(expired, token("s2"))

        at_ms = int((now + timedelta(hours=1)).timestamp() * 1000) + day_ms
        assert await store._cmd("PEXPIRETIME", f"{prefix}cred:{token('s1')}") == at_ms
        assert await store._cmd("PEXPIRETIME", f"{prefix}sid:s1") == at_ms
        # Written after its expiry: kept a day from now, and read back as expired.
        now_ms = int(now.timestamp() * 1000)
        assert await store._cmd("PEXPIRETIME", f"{prefix}cred:{token('s2')}") == now_ms + day_ms
        snap = await store.snapshot(token("s2"))
        assert snap is not None
        with pytest.raises(Refused):
            check_live(snap.credential, now=now)
    finally:
        await store.close()
        await delete_prefix(prefix)


# fail closed ---------------------------------------------------------------------------------


async def test_unreachable_redis_is_unavailable_on_every_path_an_order_takes() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0?prefix=nowhere:")
    await store.start()
    snap = Snapshot(credential("s1", "u1"), account("u1"), Registration(), {})
    order = KnownOrder("o-1", "u1", "NSE_EQ|X", Side.BUY)
    calls: list[Any] = [
        store.ping(),
        store.snapshot(token("s1")),
        store.verify(snap),
        store.admit(snap, now=1.0, limit=10),
        store.begin_idempotent(idem("u1", "k1")),
        store.finish_idempotent(idem("u1", "k1")),
        store.release_idempotent(idem("u1", "k1")),
        store.known_order("o-1"),
        store.remember_order(order),
        store.create_credential(credential("s1", "u1"), token("s1")),
        store.get_registration("u1"),
        store.apply_ip_change("u1", registration(IP_A), expected_version=0),
        store.revoke_account("u1"),
        store.get_account("u1"),
        store.get_app("k1"),
        store.set_upstream_auth("u1", "upstox", {"Authorization": "x"}),
    ]
    try:
        for call in calls:
            with pytest.raises(StoreUnavailable) as exc:
                await call
            assert exc.value.__cause__ is not None
        store.audit(AuditEntry.of({"at": "1", "user_id": "u1"}))  # buffered: kept for a later flush
        with pytest.raises(StoreUnavailable):
            await store.audit_query(user_id=None, limit=1)
        assert len(store._pending_audit) == 1
    finally:
        await store.close()  # logs the unwritten record, does not raise
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()


async def test_the_audit_script_writes_newest_first_and_keeps_each_list_to_its_cap() -> None:
    prefix = unique_prefix()
    store = RedisStore.from_url(redis_url(prefix))
    pairs = [("U1", b"r1"), ("", b"r2"), ("U1", b"r3"), ("U2", b"r4"), ("U1", b"r5")]
    try:
        await store._eval(WRITE_AUDIT, (), (prefix, 3, 2, *(x for p in pairs for x in p)))
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            everyone = await client.lrange(f"{prefix}audit", 0, -1)
            u1 = await client.lrange(f"{prefix}audit-user:U1", 0, -1)
            u2 = await client.lrange(f"{prefix}audit-user:U2", 0, -1)
        finally:
            await client.aclose()
    finally:
        await store.close()
        await delete_prefix(prefix)

    assert (everyone, u1, u2) == ([b"r5", b"r4", b"r3"], [b"r5", b"r3"], [b"r4"])
