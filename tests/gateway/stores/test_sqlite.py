"""SQLite specifics (SPEC §11, §12): WAL and durable commits, data surviving a restart,
fail-closed errors, and in-process caches that never answer with stale state."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.stores.base import App, AuditEntry, IdempotencyRecord, Snapshot, StoreUnavailable
from gateway.stores.sqlite import SQLiteStore
from rules.decisions import Reason, Refused
from rules.orders import KnownOrder
from rules.sessions import check_live
from rules.types import Side

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


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "gateway.db")


@pytest.fixture
async def sqlite(path: str) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(path)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def pragma(store: SQLiteStore, name: str) -> Any:
    row = await store._run(lambda: store._conn.execute(f"PRAGMA {name}").fetchone())
    return row[0]


async def test_journal_is_wal_and_commits_are_synchronous_full(sqlite: SQLiteStore) -> None:
    assert await pragma(sqlite, "journal_mode") == "wal"
    assert await pragma(sqlite, "synchronous") == 2  # FULL
    assert await pragma(sqlite, "foreign_keys") == 1


async def test_from_url_takes_the_path_after_the_scheme(tmp_path: Path) -> None:
    store = SQLiteStore.from_url(f"sqlite:///{tmp_path}/x.db")
    await store.start()
    await store.close()
    assert (tmp_path / "x.db").is_file()


async def test_everything_survives_close_and_reopen(path: str) -> None:
    first = SQLiteStore(path)
    await first.start()
    await first.create_account(account("parent"))
    await first.create_account(account("member"))
    await family(first, "parent", "member")
    await first.create_app(App(api_key="k1", user_id="parent", secret_hash="s", created_at=T0))
    await ip_change(first, "parent", registration(IP_A, IP_B), expected_version=0)
    await login(first, "s1", "member", ip=IP_A, slot="primary")
    await login(first, "s2", "parent", ip=IP_B, slot="secondary")
    await first.revoke_credential("s2")
    order = KnownOrder(order_id="o-1", user_id="member", instrument_key="NSE_EQ|X", side=Side.BUY)
    await first.remember_order(order)
    audit = {"at": "2026-04-06 09:15:00", "user_id": "member", "decision": "admit"}
    first.audit(AuditEntry.of(audit))
    await first.begin_idempotent(idem("member", "k-open"))
    await first.begin_idempotent(idem("member", "k-done"))
    done = IdempotencyRecord(user_id="member", key="k-done", body_hash="h1", status=200, body=b"ok")
    await first.finish_idempotent(done)
    await first.close()

    second = SQLiteStore(path)
    await second.start()
    try:
        snap = await second.snapshot(token("s1"))
        assert snap is not None
        assert snap.credential == credential("s1", "member", ip=IP_A, slot="primary")
        assert snap.account.parent_id == "parent"
        assert snap.registration == registration(IP_A, IP_B)
        assert dict(snap.slot_holders) == {"primary": "s1"}
        revoked = await second.snapshot(token("s2"))
        assert revoked is not None
        assert revoked.credential.revoked
        assert await second.get_app("k1") is not None
        assert [m.user_id for m in await second.family_members("parent")] == ["member"]
        assert await second.known_order("o-1") == order
        assert list(await second.audit_query(user_id="member", limit=5)) == [audit]
        assert await second.begin_idempotent(idem("member", "k-open")) == idem("member", "k-open")
        assert await second.begin_idempotent(idem("member", "k-done")) == done
        with pytest.raises(Refused) as exc:
            await ip_change(second, "parent", registration(IP_B), expected_version=0)
        assert exc.value.refusal.reason is Reason.CONCURRENT_UPDATE
    finally:
        await second.close()


async def test_known_orders_and_audit_are_flushed_by_close(path: str) -> None:
    first = SQLiteStore(path)
    await first.start()
    for i in range(3):
        await first.remember_order(
            KnownOrder(order_id=f"o-{i}", user_id="u1", instrument_key="NSE_EQ|X", side=Side.SELL)
        )
        first.audit(AuditEntry.of({"at": str(i), "user_id": "u1"}))
    await first.close()

    second = SQLiteStore(path)
    await second.start()
    try:
        assert [await second.known_order(f"o-{i}") is not None for i in range(3)] == [True] * 3
        assert [r["at"] for r in await second.audit_query(user_id="u1", limit=5)] == ["2", "1", "0"]
    finally:
        await second.close()


async def test_a_failed_flush_keeps_the_buffered_records(sqlite: SQLiteStore, path: str) -> None:
    # A writer that holds the database (another process, a backup) makes a flush fail;
    # the buffered audit records and known orders must be written by the next flush.
    await sqlite._run(lambda: sqlite._conn.execute("PRAGMA busy_timeout=0"))
    order = KnownOrder(order_id="o-1", user_id="u1", instrument_key="NSE_EQ|X", side=Side.BUY)
    await sqlite.remember_order(order)
    sqlite.audit(AuditEntry.of({"at": "1", "user_id": "u1"}))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await sqlite.audit_query(user_id="u1", limit=5)
        other.execute("ROLLBACK")
    finally:
        other.close()

    assert [r["at"] for r in await sqlite.audit_query(user_id="u1", limit=5)] == ["1"]
    (count,) = await sqlite._run(
        lambda: sqlite._conn.execute("SELECT COUNT(*) FROM orders").fetchone()
    )
    assert count == 1


@pytest.mark.parametrize("kind", ["missing directory", "directory", "not a database"])
async def test_a_store_that_cannot_open_its_file_is_unavailable(tmp_path: Path, kind: str) -> None:
    if kind == "missing directory":
        target = tmp_path / "absent" / "gateway.db"
    elif kind == "directory":
        target = tmp_path
    else:
        target = tmp_path / "gateway.db"
        target.write_bytes(b"this is not an SQLite database\n" * 64)
    store = SQLiteStore(str(target))
    try:
        with pytest.raises(StoreUnavailable):
            await store.start()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.snapshot(token("s1"))
    finally:
        await store.close()


async def test_a_closed_store_is_unavailable(path: str) -> None:
    store = SQLiteStore(path)
    await store.start()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.snapshot(token("s1"))


async def test_an_unstarted_store_is_unavailable(path: str) -> None:
    store = SQLiteStore(path)
    try:
        with pytest.raises(StoreUnavailable):
            await store.get_account("u1")
    finally:
        await store.close()


# caches ----------------------------------------------------------------------------------


async def warm(store: SQLiteStore, *session_ids: str) -> None:
    """Read snapshots (and accounts) so every cache holds them."""
    for session_id in session_ids:
        snap = await store.snapshot(token(session_id))
        assert snap is not None
        await store.get_account(snap.account.user_id)


def live(snap: Snapshot | None) -> bool:
    assert snap is not None
    try:
        check_live(snap.credential, now=LATER)
    except Refused:
        return False
    return True


async def test_ip_change_is_seen_by_the_next_snapshot_of_a_member(sqlite: SQLiteStore) -> None:
    await sqlite.create_account(account("parent"))
    await sqlite.create_account(account("member"))
    await family(sqlite, "parent", "member")
    await ip_change(sqlite, "parent", registration(IP_A), expected_version=0)
    await login(sqlite, "m1", "member", ip=IP_A)
    await login(sqlite, "p1", "parent", ip=IP_A)
    await warm(sqlite, "m1", "p1")

    await ip_change(sqlite, "parent", registration(IP_B, version=2), expected_version=1)

    for session_id in ("m1", "p1"):
        snap = await sqlite.snapshot(token(session_id))
        assert snap is not None
        assert snap.registration == registration(IP_B, version=2)
        assert not live(snap)
        assert dict(snap.slot_holders) == {}


async def test_revocations_are_seen_by_the_next_snapshot(sqlite: SQLiteStore) -> None:
    await sqlite.create_account(account("u1"))
    await login(sqlite, "s1", "u1", slot="primary")
    await login(sqlite, "s2", "u1", slot="secondary")
    await warm(sqlite, "s1", "s2")

    await sqlite.revoke_credential("s1")
    assert not live(await sqlite.snapshot(token("s1")))
    assert live(await sqlite.snapshot(token("s2")))
    await sqlite.revoke_account("u1")
    snap = await sqlite.snapshot(token("s2"))
    assert not live(snap)


async def test_joining_and_leaving_a_family_is_seen_by_the_next_read(sqlite: SQLiteStore) -> None:
    await sqlite.create_account(account("parent"))
    await sqlite.create_account(account("member"))
    await ip_change(sqlite, "parent", registration(IP_A), expected_version=0)
    await ip_change(sqlite, "member", registration(IP_B), expected_version=0)
    await login(sqlite, "m1", "member", ip=IP_B)
    await warm(sqlite, "m1")

    await family(sqlite, "parent", "member")
    joined = await sqlite.get_account("member")
    assert joined is not None
    assert joined.parent_id == "parent"
    snap = await sqlite.snapshot(token("m1"))
    assert snap is not None
    assert snap.registration == registration(IP_A)
    assert not live(snap)  # its sessions were bound to its own IPs

    await login(sqlite, "m2", "member", ip=IP_A)
    await warm(sqlite, "m2")
    await sqlite.remove_family_member("parent", "member")
    snap = await sqlite.snapshot(token("m2"))
    assert snap is not None
    assert snap.account.parent_id is None
    assert snap.registration.ips == frozenset()  # leaving released its own IPs
    assert not live(snap)


# schema migration ----------------------------------------------------------------------------

# The accounts table as gateways before stored upstream credentials created it.
_OLD_ACCOUNTS = """
CREATE TABLE accounts (
    user_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,
    parent_id TEXT REFERENCES accounts(user_id), algo_id TEXT
);
INSERT INTO accounts VALUES ('old1', 'Asha', '2026-04-06T09:15:00+00:00', NULL, 'ALGO-7');
INSERT INTO accounts VALUES ('old2', 'Ravi', '2026-04-06T09:15:00+00:00', 'old1', NULL);
"""


async def test_an_older_database_gains_the_upstream_auth_column_and_keeps_its_rows(
    path: str,
) -> None:
    old = sqlite3.connect(path)
    old.executescript(_OLD_ACCOUNTS)
    old.close()

    store = SQLiteStore(path)
    await store.start()
    try:
        columns = await store._run(
            lambda: [row[1] for row in store._conn.execute("PRAGMA table_info(accounts)")]
        )
        assert columns[-5:] == [
            "upstream_auth",
            "algo_name",
            "egress_ip",
            "broker_user_id",
            "broker_sessions",
        ]
        first = await store.get_account("old1")
        assert first is not None
        assert (first.name, first.algo_id, first.upstream_auth) == ("Asha", "ALGO-7", {})
        assert (first.algo_name, first.egress_ip, first.broker_user_id) == (None, None, None)
        assert first.broker_sessions == {}
        listed = await store.list_accounts()
        assert [(a.user_id, a.parent_id) for a in listed] == [("old1", None), ("old2", "old1")]
        await store.set_upstream_auth("old1", "upstox", {"Authorization": "Bearer b"})
        await store.create_account(account("new1"))
    finally:
        await store.close()

    reopened = SQLiteStore(path)  # a second start finds the column and adds nothing
    await reopened.start()
    try:
        again = await reopened.get_account("old1")
        assert again is not None
        assert again.upstream_auth == {"upstox": {"Authorization": "Bearer b"}}
        assert len(await reopened.list_accounts()) == 3
    finally:
        await reopened.close()


# The accounts table as gateways before per-account algo names (SPEC §8) created it.
_ACCOUNTS_WITHOUT_ALGO_NAME = """
CREATE TABLE accounts (
    user_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,
    parent_id TEXT REFERENCES accounts(user_id), algo_id TEXT,
    upstream_auth TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO accounts VALUES ('old1', 'Asha', '2026-04-06T09:15:00+00:00', NULL, 'ALGO-7',
    '{"kotak": {"Sid": "x"}}');
"""


async def test_an_older_database_gains_the_algo_name_column_and_keeps_its_rows(
    path: str,
) -> None:
    old = sqlite3.connect(path)
    old.executescript(_ACCOUNTS_WITHOUT_ALGO_NAME)
    old.close()

    store = SQLiteStore(path)
    await store.start()
    try:
        first = await store.get_account("old1")
        assert first is not None
        assert (first.algo_id, first.algo_name) == ("ALGO-7", None)
        assert first.upstream_auth == {"kotak": {"Sid": "x"}}
        assert await store.set_algo("old1", algo_id="ALGO-8", algo_name="Momentum") is True
    finally:
        await store.close()

    reopened = SQLiteStore(path)
    await reopened.start()
    try:
        again = await reopened.get_account("old1")
        assert again is not None
        assert (again.algo_id, again.algo_name) == ("ALGO-8", "Momentum")
    finally:
        await reopened.close()


async def test_setting_upstream_auth_drops_the_cached_account(sqlite: SQLiteStore) -> None:
    await sqlite.create_account(account("u1"))
    snap = await login(sqlite, "s1", "u1")
    assert sqlite._accounts["u1"] is snap.account
    await sqlite.set_upstream_auth("u1", "kotak", {"Sid": "x"})
    assert "u1" not in sqlite._accounts
    fresh = await sqlite.snapshot(token("s1"))
    assert fresh is not None
    assert fresh.account.upstream_auth == {"kotak": {"Sid": "x"}}
    assert fresh.credential is snap.credential  # only the account was read again
