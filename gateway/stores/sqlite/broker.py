"""Broker sessions the login relay keeps, and the client code the broker knows an account by
(SPEC §14): part of the Accounts role."""

from __future__ import annotations

import orjson

from ..base import BrokerSession
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
