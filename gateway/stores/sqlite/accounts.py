"""Accounts, their API apps, stored upstream credentials and algo ids (the Accounts role)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

import orjson

from ..base import Account, App, Duplicate
from . import schema
from .core import SQLiteCore


class SQLiteAccounts(SQLiteCore):
    async def create_account(self, account: Account) -> Account:
        def write() -> None:
            try:
                self._conn.execute(
                    f"INSERT INTO accounts ({schema.ACCOUNT_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        account.user_id,
                        account.name,
                        schema.ts(account.created_at),
                        account.parent_id,
                        account.algo_id,
                        orjson.dumps(account.upstream_auth).decode(),
                        account.algo_name,
                        account.egress_ip,
                        account.broker_user_id,
                        schema.broker_sessions_json(account.broker_sessions),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Duplicate(f"account {account.user_id!r} exists") from exc

        await self._run(write)
        self._accounts[account.user_id] = account
        return account

    async def get_account(self, user_id: str) -> Account | None:
        return await self._account(user_id)

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

    async def set_egress(self, user_id: str, ip: str | None) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE accounts SET egress_ip = ? WHERE user_id = ?", (ip, user_id)
            )
            return cur.rowcount > 0

        found = await self._run(write)
        self._accounts.pop(user_id, None)  # members' snapshots read the parent through it too
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
