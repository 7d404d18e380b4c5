"""The SQLite store's one connection, its thread, its caches and its transactions.

All SQL runs on one dedicated thread, so the event loop never blocks on disk and writes are
serialised; read-then-write operations run inside ``BEGIN IMMEDIATE`` so they are atomic.
The journal is WAL with ``synchronous=FULL``: a commit that returned is on disk.

This process is the only writer, so the in-process caches are invalidated exactly when the
write that makes them stale commits.  Each role module (``accounts``, ``credentials``, …)
is a mixin over this core; ``SQLiteStore`` is their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from cachetools import LRUCache

from rules.orders import KnownOrder
from rules.ratelimit import SlidingWindowLimiter
from rules.registry import Registration
from rules.sessions import Credential

from ..base import Account, StoreUnavailable
from ..flusher import Flusher
from . import schema

_T = TypeVar("_T")
UNCACHED = object()  # a cache miss; a cached None means "no such row"


class SQLiteCore:
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

    async def _flush(self) -> None:
        """Write the buffered audit records and known orders (``audit``)."""
        raise NotImplementedError

    async def _flush_tick(self) -> None:
        if not self._healthy:
            await self.ping()  # a successful statement marks the store healthy again
        await self._flush()

    async def _account(self, user_id: str) -> Account | None:
        """The account through its cache (snapshots read it here)."""
        cached = self._accounts.get(user_id, UNCACHED)
        if cached is not UNCACHED:
            return cast("Account | None", cached)
        account = await self._run(schema.read_account, self._conn, user_id)
        self._accounts[user_id] = account
        return account

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
