"""Broker sessions the login relay keeps, the client code the broker knows an account by, and
relayed logins between their two steps (SPEC §14): part of the Accounts role."""

from __future__ import annotations

from datetime import datetime

import orjson

from ..base import BrokerSession, LoginStep
from . import schema
from .core import SQLiteCore


class SQLiteBroker(SQLiteCore):
    async def set_broker_user_id(self, user_id: str, broker_user_id: str | None) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE accounts SET broker_user_id = ? WHERE user_id = ?",
                (broker_user_id, user_id),
            )
            return cur.rowcount > 0

        found = await self._run(write)
        self._accounts.pop(user_id, None)
        return found

    async def set_broker_session(
        self, user_id: str, dialect: str, session: BrokerSession | None
    ) -> bool:
        def write() -> bool:
            with self._tx() as db:
                row = db.execute(
                    "SELECT broker_sessions FROM accounts WHERE user_id = ?", (user_id,)
                ).fetchone()
                if row is None:
                    return False
                held = orjson.loads(row[0])
                if session is None:
                    held.pop(dialect, None)
                else:
                    held[dialect] = session.to_json()
                db.execute(
                    "UPDATE accounts SET broker_sessions = ? WHERE user_id = ?",
                    (orjson.dumps(held).decode(), user_id),
                )
                return True

        found = await self._run(write)
        self._accounts.pop(user_id, None)  # the next snapshot reads the account again
        return found

    async def hold_login_step(self, key: str, step: LoginStep) -> None:
        def write() -> None:
            with self._tx() as db:
                # steps left behind (a login never finished) go once they have expired
                db.execute(
                    "DELETE FROM login_steps WHERE expires_at < ?", (schema.ts(step.expires_at),)
                )
                db.execute(
                    "INSERT OR REPLACE INTO login_steps (key, user_id, egress, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key, step.user_id, step.egress, schema.ts(step.expires_at)),
                )

        await self._run(write)

    async def login_step(self, key: str, *, now: datetime) -> LoginStep | None:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT user_id, egress, expires_at FROM login_steps WHERE key = ?", (key,)
            ).fetchone()
        )
        if row is None:
            return None
        step = LoginStep(row[0], row[1], schema.at(row[2]))
        return step if now < step.expires_at else None

    async def drop_login_step(self, key: str) -> None:
        await self._run(lambda: self._conn.execute("DELETE FROM login_steps WHERE key = ?", (key,)))
