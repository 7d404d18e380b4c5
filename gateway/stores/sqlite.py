"""SQLite store: the embedded default for one gateway process (SPEC §11).

All SQL runs on one dedicated thread, so the event loop never blocks on disk and writes are
serialised; read-then-write operations run inside ``BEGIN IMMEDIATE`` so they are atomic.
The journal is WAL with ``synchronous=FULL``: a commit that returned is on disk.

This process is the only writer, so the in-process caches are invalidated exactly when the
write that makes them stale commits.  Audit records and known orders are buffered and
written in batches (the caches answer for known orders meanwhile); everything that decides
admission is written before the call that changed it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

import orjson
from cachetools import LRUCache

from rules.family import JoinFacts
from rules.ip import canonical
from rules.orders import KnownOrder
from rules.ratelimit import SlidingWindowLimiter
from rules.registry import IpCommit, IpCommitted, Registration
from rules.sessions import Credential
from rules.types import CredentialKind, IPNetwork, Side

from . import sqlite_schema as schema
from .base import (
    Account,
    ApiToken,
    App,
    AuditEntry,
    Commit,
    Duplicate,
    IdempotencyRecord,
    Snapshot,
    Store,
    StoreUnavailable,
)
from .flusher import BATCH, Flusher

_T = TypeVar("_T")
_UNCACHED = object()  # a cache miss; a cached None means "no such row"


class SQLiteStore(Store):
    def __init__(self, path: str, *, cache_size: int = 100_000) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._credentials: LRUCache[str, Credential | None] = LRUCache(cache_size)
        self._accounts: LRUCache[str, Account | None] = LRUCache(cache_size)
        self._registrations: LRUCache[str, Registration] = LRUCache(cache_size)
        self._slots: LRUCache[str, dict[str, str]] = LRUCache(cache_size)
        self._orders: LRUCache[str, KnownOrder] = LRUCache(cache_size)
        self._limiters: dict[tuple[int, float], SlidingWindowLimiter] = {}
        self._pending_audit: list[tuple[str, str | None, bytes]] = []
        self._pending_orders: list[KnownOrder] = []
        self._healthy = True
        self._flusher = Flusher(self._flush_tick)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(url.removeprefix("sqlite:///") or ":memory:")

    # plumbing ---------------------------------------------------------------------------

    def _connect(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(schema.SCHEMA)
            schema.migrate(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, fn, *args)
        except RuntimeError as exc:  # the executor is shut down: the store was closed
            raise StoreUnavailable("sqlite store is closed") from exc
        try:
            result = await future
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:  # locked, I/O error, not a database, closed, ...
            self._healthy = False
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        self._healthy = True
        return result

    async def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """One row of a read, on the database thread (None when there is none)."""
        return await self._run(lambda: self._conn.execute(sql, args).fetchone())

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of a read, on the database thread."""
        return await self._run(lambda: self._conn.execute(sql, args).fetchall())

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailable("sqlite store is not open")
        return self._db

    async def start(self) -> None:
        await self._run(self._connect)
        self._flusher.start()

    async def close(self) -> None:
        await self._flusher.stop()
        try:
            await self._flush()
        finally:
            if self._db is not None:
                await self._run(self._conn.close)
                self._db = None
            self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._one("SELECT 1")

    # accounts and apps ------------------------------------------------------------------

    async def create_account(self, account: Account) -> Account:
        def write() -> None:
            try:
                self._conn.execute(
                    f"INSERT INTO accounts ({schema.ACCOUNT_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        account.user_id,
                        account.name,
                        schema.ts(account.created_at),
                        account.parent_id,
                        account.algo_id,
                        orjson.dumps(account.upstream_auth).decode(),
                        account.algo_name,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Duplicate(f"account {account.user_id!r} exists") from exc

        await self._run(write)
        self._accounts[account.user_id] = account
        return account

    async def get_account(self, user_id: str) -> Account | None:
        cached = self._accounts.get(user_id, _UNCACHED)
        if cached is not _UNCACHED:
            return cast("Account | None", cached)
        account = await self._run(schema.read_account, self._conn, user_id)
        self._accounts[user_id] = account
        return account

    async def list_accounts(self) -> Sequence[Account]:
        rows = await self._all(
            f"SELECT {schema.ACCOUNT_COLUMNS} FROM accounts ORDER BY user_id"  # noqa: S608
        )
        return [schema.account_row(row) for row in rows]

    async def set_upstream_auth(
        self, user_id: str, dialect: str, headers: Mapping[str, str] | None
    ) -> bool:
        def write() -> bool:
            with self._tx() as db:
                row = db.execute(
                    "SELECT upstream_auth FROM accounts WHERE user_id = ?", (user_id,)
                ).fetchone()
                if row is None:
                    return False
                stored = orjson.loads(row[0])
                if headers is None:
                    stored.pop(dialect, None)
                else:
                    stored[dialect] = dict(headers)
                db.execute(
                    "UPDATE accounts SET upstream_auth = ? WHERE user_id = ?",
                    (orjson.dumps(stored).decode(), user_id),
                )
                return True

        found = await self._run(write)
        # Snapshots read the account through this cache: the next one reads the new value.
        self._accounts.pop(user_id, None)
        return found

    async def set_algo(self, user_id: str, *, algo_id: str | None, algo_name: str | None) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE accounts SET algo_id = ?, algo_name = ? WHERE user_id = ?",
                (algo_id, algo_name, user_id),
            )
            return cur.rowcount > 0

        found = await self._run(write)
        self._accounts.pop(user_id, None)
        return found

    async def create_app(self, app: App) -> App:
        await self._run(
            lambda: self._conn.execute(
                "INSERT INTO apps (api_key, user_id, secret_hash, created_at) VALUES (?, ?, ?, ?)",
                (app.api_key, app.user_id, app.secret_hash, schema.ts(app.created_at)),
            )
        )
        return app

    async def get_app(self, api_key: str) -> App | None:
        row = await self._one(
            "SELECT api_key, user_id, secret_hash, created_at FROM apps WHERE api_key = ?",
            (api_key,),
        )
        if row is None:
            return None
        created = schema.dt(row[3])
        assert created is not None
        return App(api_key=row[0], user_id=row[1], secret_hash=row[2], created_at=created)

    # credentials ------------------------------------------------------------------------

    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        c = credential

        def write() -> None:
            with self._tx() as db:
                schema.insert_credential(db, c, token_hash)
                if c.slot is not None:
                    db.execute(
                        "INSERT INTO slots (user_id, slot, session_id) VALUES (?, ?, ?)"
                        " ON CONFLICT (user_id, slot)"
                        " DO UPDATE SET session_id = excluded.session_id",
                        (c.user_id, c.slot, c.session_id),
                    )

        await self._run(write)
        self._credentials[token_hash] = c
        self._slots.pop(c.user_id, None)
        return c

    async def snapshot(self, token_hash: str) -> Snapshot | None:
        cached = self._credentials.get(token_hash, _UNCACHED)
        if cached is _UNCACHED:
            credential = await self._run(schema.read_credential, self._conn, token_hash)
            self._credentials[token_hash] = credential
        else:
            credential = cast("Credential | None", cached)
        if credential is None:
            return None
        account = await self.get_account(credential.user_id)
        if account is None:
            return None
        owner = account.parent_id or account.user_id
        registration = self._registrations.get(owner)
        if registration is None:
            registration = await self._run(schema.read_registration, self._conn, owner)
            self._registrations[owner] = registration
        slots = self._slots.get(account.user_id)
        if slots is None:
            slots = await self._run(schema.read_slots, self._conn, account.user_id)
            self._slots[account.user_id] = slots
        return Snapshot(credential, account, registration, slots)

    async def revoke_credential(self, session_id: str) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE credentials SET revoked = 1 WHERE session_id = ? AND revoked = 0",
                (session_id,),
            )
            return cur.rowcount > 0

        changed = await self._run(write)
        self._forget_credentials(lambda c: c.session_id == session_id)
        return changed

    async def revoke_account(self, user_id: str) -> int:
        def write() -> int:
            with self._tx() as db:
                return schema.revoke_accounts(db, [user_id])

        count = await self._run(write)
        self._forget_accounts({user_id})
        return count

    def _forget_credentials(self, match: Callable[[Credential], bool]) -> None:
        stale = [h for h, c in self._credentials.items() if c is not None and match(c)]
        for token_hash in stale:
            del self._credentials[token_hash]

    def _forget_accounts(self, user_ids: set[str]) -> None:
        self._forget_credentials(lambda c: c.user_id in user_ids)
        for user_id in user_ids:
            self._slots.pop(user_id, None)
            self._registrations.pop(user_id, None)
            self._accounts.pop(user_id, None)

    # API tokens and the analytics token -----------------------------------------------

    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        def write() -> None:
            with self._tx() as db:
                schema.insert_credential(db, credential, token_hash)
                db.execute(
                    "INSERT INTO api_tokens (lookup_id, session_id, user_id, name, kind,"
                    " created_at, last_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        token.lookup_id,
                        credential.session_id,
                        token.user_id,
                        token.name,
                        token.kind,
                        schema.ts(token.created_at),
                        schema.ts(token.last_updated_at),
                    ),
                )

        await self._run(write)
        self._credentials[token_hash] = credential
        return token

    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        def read() -> list[Any]:
            with self._tx() as db:
                db.execute(
                    "UPDATE api_tokens SET revoked_at = ?, last_updated_at = ?"
                    " WHERE user_id = ? AND revoked_at IS NULL AND session_id IN"
                    " (SELECT session_id FROM credentials WHERE user_id = ? AND revoked = 1)",
                    (schema.ts(now), schema.ts(now), user_id, user_id),
                )
                sql = schema.METADATA_SELECT + " WHERE t.user_id = ?"
                args: tuple[str, ...] = (user_id,)
                if kind is not None:
                    sql, args = sql + " AND t.kind = ?", (*args, kind)
                return db.execute(sql + " ORDER BY t.created_at, t.rowid", args).fetchall()

        tokens = [schema.token_row(row) for row in await self._run(read)]
        if with_invalid:
            return tokens
        return [t for t in tokens if t.live_at(now)]

    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        def write() -> ApiToken | None:
            with self._tx() as db:
                found = schema.read_token(self._conn, user_id, lookup_id)
                if found is None:
                    return None
                token, _ = found
                db.execute(
                    "UPDATE credentials SET revoked = 1 WHERE session_id = ?", (token.token_id,)
                )
                if token.revoked_at is None:
                    db.execute(
                        "UPDATE api_tokens SET revoked_at = ?, last_updated_at = ?"
                        " WHERE lookup_id = ?",
                        (schema.ts(now), schema.ts(now), lookup_id),
                    )
                    return replace(token, revoked_at=now, last_updated_at=now)
                return token

        token = await self._run(write)
        if token is not None:
            self._forget_credentials(lambda c: c.session_id == token.token_id)
        return token

    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        def write() -> ApiToken | None:
            with self._tx() as db:
                found = schema.read_token(self._conn, user_id, lookup_id)
                if found is None:
                    return None
                token, revoked = found
                if revoked or not token.live_at(now):
                    return None
                db.execute(
                    "UPDATE credentials SET allowed_cidrs = ? WHERE session_id = ?",
                    (schema.cidrs(cidrs), token.token_id),
                )
                db.execute(
                    "UPDATE api_tokens SET last_updated_at = ? WHERE lookup_id = ?",
                    (schema.ts(now), lookup_id),
                )
                return replace(token, allowed_cidrs=cidrs, last_updated_at=now)

        token = await self._run(write)
        if token is not None:
            self._forget_credentials(lambda c: c.session_id == token.token_id)
        return token

    async def live_analytics_token(self, user_id: str) -> Credential | None:
        return await self._run(schema.read_live_analytics, self._conn, user_id)

    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        c = credential

        def write() -> Commit:
            with self._tx() as db:
                live = schema.read_live_analytics(db, c.user_id)
                if (None if live is None else live.session_id) != retire:
                    return Commit.STALE
                # Retired first: the unique index admits one unrevoked analytics credential.
                db.execute("UPDATE credentials SET revoked = 1 WHERE session_id = ?", (retire,))
                schema.insert_credential(db, c, token_hash)
                return Commit.DONE

        done = await self._run(write)
        if done is Commit.DONE:
            self._forget_credentials(
                lambda old: old.user_id == c.user_id and old.kind is CredentialKind.ANALYTICS
            )
            self._credentials[token_hash] = c
        return done

    async def revoke_analytics_token(self, user_id: str) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE credentials SET revoked = 1"
                " WHERE user_id = ? AND kind = 'analytics' AND revoked = 0",
                (user_id,),
            )
            return cur.rowcount > 0

        changed = await self._run(write)
        self._forget_credentials(
            lambda c: c.user_id == user_id and c.kind is CredentialKind.ANALYTICS
        )
        return changed

    # admission --------------------------------------------------------------------------

    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        # The caches could answer alone, but an order whose audit record and known-order
        # entry cannot be written must not go upstream: fail closed (SPEC §12).
        if self._db is None or not self._healthy:
            raise StoreUnavailable("the sqlite store is not answering")
        limiter = self._limiters.get((limit, window))
        if limiter is None:
            limiter = self._limiters[(limit, window)] = SlidingWindowLimiter(limit, window)
        return limiter.try_acquire(snapshot.account.user_id, now, count)

    # registry ---------------------------------------------------------------------------

    async def get_registration(self, user_id: str) -> Registration:
        return await self._run(schema.read_registration, self._conn, user_id)

    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        def write() -> tuple[IpCommitted, list[str]]:
            with self._tx() as db:
                current = schema.read_registration(self._conn, user_id)
                if current.version != expected_version:
                    return IpCommitted(IpCommit.VERSION_MOVED), []
                members = [
                    row[0]
                    for row in db.execute(
                        "SELECT user_id FROM accounts WHERE parent_id = ?", (user_id,)
                    )
                ]
                family = [user_id, *members]
                for ip in sorted(str(ip) for ip in new.ips):
                    marks = ",".join("?" * len(family))
                    # only "?" placeholders are formatted into the statement
                    holder = db.execute(
                        "SELECT user_id FROM registrations"  # noqa: S608
                        " WHERE (primary_ip = ? OR secondary_ip = ?)"
                        f" AND user_id NOT IN ({marks}) LIMIT 1",
                        (ip, ip, *family),
                    ).fetchone()
                    if holder is not None:
                        return IpCommitted(IpCommit.TAKEN, ip), []
                db.execute(
                    "INSERT INTO registrations (user_id, primary_ip, secondary_ip,"
                    " primary_updated_at, secondary_updated_at, changed_at, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                    " primary_ip = excluded.primary_ip, secondary_ip = excluded.secondary_ip,"
                    " primary_updated_at = excluded.primary_updated_at,"
                    " secondary_updated_at = excluded.secondary_updated_at,"
                    " changed_at = excluded.changed_at, version = excluded.version",
                    (
                        user_id,
                        # Stored canonical, so uniqueness never compares raw strings (SPEC §4).
                        None if new.primary is None else str(canonical(new.primary)),
                        None if new.secondary is None else str(canonical(new.secondary)),
                        schema.ts(new.primary_updated_at),
                        schema.ts(new.secondary_updated_at),
                        schema.ts(new.changed_at),
                        new.version,
                    ),
                )
                schema.revoke_accounts(db, family)
                return IpCommitted(IpCommit.APPLIED), family

        committed, family = await self._run(write)
        self._forget_accounts(set(family))
        return committed

    # families ---------------------------------------------------------------------------

    async def family_members(self, parent_id: str) -> Sequence[Account]:
        rows = await self._all(
            f"SELECT {schema.ACCOUNT_COLUMNS} FROM accounts"  # noqa: S608
            " WHERE parent_id = ? ORDER BY user_id",
            (parent_id,),
        )
        return [schema.account_row(row) for row in rows]

    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        return await self._run(schema.read_join_facts, self._conn, parent_id, member_id)

    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit:
        def write() -> Commit:
            with self._tx() as db:
                if schema.read_join_facts(db, parent_id, member_id) != expected:
                    return Commit.STALE
                db.execute(
                    "UPDATE accounts SET parent_id = ? WHERE user_id = ?", (parent_id, member_id)
                )
                # The member trades from the parent's IPs now; its own registration would
                # otherwise keep holding addresses outside the family once it leaves.
                db.execute("DELETE FROM registrations WHERE user_id = ?", (member_id,))
                # The member now trades from the parent's IPs: its old sessions were bound
                # to its own registration, so they end here.
                schema.revoke_accounts(db, [member_id])
                return Commit.DONE

        done = await self._run(write)
        self._forget_accounts({member_id})
        return done

    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        def write() -> bool:
            with self._tx() as db:
                cur = db.execute(
                    "UPDATE accounts SET parent_id = NULL WHERE user_id = ? AND parent_id = ?",
                    (member_id, parent_id),
                )
                if cur.rowcount:
                    schema.revoke_accounts(db, [member_id])
                return cur.rowcount > 0

        removed = await self._run(write)
        self._forget_accounts({member_id})
        return removed

    # known orders -----------------------------------------------------------------------

    async def remember_order(self, order: KnownOrder) -> None:
        self._orders[order.order_id] = order
        self._pending_orders.append(order)

    async def known_order(self, order_id: str) -> KnownOrder | None:
        if order_id in self._orders:
            return self._orders[order_id]
        row = await self._one(
            "SELECT order_id, user_id, instrument_key, side FROM orders WHERE order_id = ?",
            (order_id,),
        )
        if row is None:
            return None
        order = KnownOrder(
            order_id=row[0], user_id=row[1], instrument_key=row[2], side=Side(row[3])
        )
        self._orders[order_id] = order
        return order

    # idempotency ------------------------------------------------------------------------

    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        def write() -> IdempotencyRecord | None:
            with self._tx() as db:
                row = db.execute(
                    "SELECT body_hash, status, headers, body FROM idempotency"
                    " WHERE user_id = ? AND key = ?",
                    (record.user_id, record.key),
                ).fetchone()
                if row is not None:
                    return IdempotencyRecord(
                        user_id=record.user_id,
                        key=record.key,
                        body_hash=row[0],
                        status=row[1],
                        headers=orjson.loads(row[2]),
                        body=bytes(row[3]),
                    )
                db.execute(
                    "INSERT INTO idempotency (user_id, key, body_hash) VALUES (?, ?, ?)",
                    (record.user_id, record.key, record.body_hash),
                )
                return None

        return await self._run(write)

    async def finish_idempotent(self, record: IdempotencyRecord) -> None:
        await self._run(
            lambda: self._conn.execute(
                "UPDATE idempotency SET status = ?, headers = ?, body = ?"
                " WHERE user_id = ? AND key = ?",
                (
                    record.status,
                    orjson.dumps(dict(record.headers)),
                    record.body,
                    record.user_id,
                    record.key,
                ),
            )
        )

    async def release_idempotent(self, record: IdempotencyRecord) -> None:
        await self._run(
            lambda: self._conn.execute(
                "DELETE FROM idempotency WHERE user_id = ? AND key = ? AND status IS NULL",
                (record.user_id, record.key),
            )
        )

    # audit ------------------------------------------------------------------------------

    def audit(self, entry: AuditEntry) -> None:
        self._pending_audit.append((entry.at, entry.user_id, entry.record))
        if len(self._pending_audit) >= BATCH:
            self._flusher.wake()  # the flusher writes it; this request does not wait for a commit

    async def audit_query(self, *, user_id: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        await self._flush()

        if user_id is None:
            rows = await self._all("SELECT record FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT record FROM audit WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            )
        return [orjson.loads(row[0]) for row in rows]

    async def _flush(self) -> None:
        audit, self._pending_audit = self._pending_audit, []
        orders, self._pending_orders = self._pending_orders, []
        if (not audit and not orders) or self._db is None:
            return

        def write() -> None:
            with self._tx() as db:
                db.executemany("INSERT INTO audit (at, user_id, record) VALUES (?, ?, ?)", audit)
                db.executemany(
                    "INSERT OR IGNORE INTO orders (order_id, user_id, instrument_key, side)"
                    " VALUES (?, ?, ?, ?)",
                    [(o.order_id, o.user_id, o.instrument_key, o.side.value) for o in orders],
                )

        try:
            await self._run(write)
        except StoreUnavailable:
            # Keep the batch (in order) for the next flush: an audit record is never dropped.
            self._pending_audit[:0] = audit
            self._pending_orders[:0] = orders
            raise

    async def _flush_tick(self) -> None:
        if not self._healthy:
            await self.ping()  # a successful statement marks the store healthy again
        await self._flush()
