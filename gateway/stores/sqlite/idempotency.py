"""``Idempotency-Key`` claims (the Idempotency role), SPEC §10: durable before the answer."""

from __future__ import annotations

import orjson

from ..base import IdempotencyRecord
from .core import SQLiteCore


class SQLiteIdempotency(SQLiteCore):
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

    async def peek_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        row = await self._one(
            "SELECT body_hash, status, headers, body FROM idempotency"
            " WHERE user_id = ? AND key = ?",
            (user_id, key),
        )
        if row is None:
            return None
        return IdempotencyRecord(
            user_id=user_id,
            key=key,
            body_hash=row[0],
            status=row[1],
            headers=orjson.loads(row[2]),
            body=bytes(row[3]),
        )

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
