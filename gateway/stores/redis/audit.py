"""The audit log (the AuditLog role), SPEC §12: capped lists, written in batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..base import AuditEntry, StoreUnavailable
from ..flusher import BATCH
from .core import AUDIT_KEEP, RedisCore, log

AUDIT_KEEP_PER_USER = 10_000


class RedisAudit(RedisCore):
    def audit(self, entry: AuditEntry) -> None:
        self._pending_audit.append((entry.user_id, entry.record))
        if len(self._pending_audit) >= BATCH:
            self._flusher.wake()  # the flusher writes it; this request does not wait for Redis

    async def audit_query(self, *, user_id: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        await self._flush()
        key = self._key("audit") if user_id is None else self._key("audit-user", user_id)
        rows = await self._cmd("LRANGE", key, 0, limit - 1) if limit > 0 else []
        return [orjson.loads(row) for row in rows]

    async def _flush(self) -> None:
        batch, self._pending_audit = self._pending_audit, []
        if not batch:
            return
        try:
            with self._redis():
                async with self._client.pipeline(transaction=True) as pipe:
                    everyone = self._key("audit")
                    pipe.lpush(everyone, *(record for _, record in batch))
                    pipe.ltrim(everyone, 0, AUDIT_KEEP - 1)
                    by_user: dict[str, list[bytes]] = {}
                    for user_id, record in batch:
                        if user_id is not None:
                            by_user.setdefault(user_id, []).append(record)
                    for user_id, records in by_user.items():
                        mine = self._key("audit-user", user_id)
                        pipe.lpush(mine, *records)
                        pipe.ltrim(mine, 0, AUDIT_KEEP_PER_USER - 1)
                    await pipe.execute()
        except StoreUnavailable:
            # Keep the batch (in order) for the next flush, up to a bound while Redis is down.
            self._pending_audit[:0] = batch
            dropped = len(self._pending_audit) - AUDIT_KEEP
            if dropped > 0:
                del self._pending_audit[:dropped]
                log.error("redis unavailable: dropped the %d oldest audit records", dropped)
            raise
