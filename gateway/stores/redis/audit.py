"""The audit log (the AuditLog role), SPEC §12: capped lists, written in batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..base import AuditEntry, StoreUnavailable
from ..flusher import BATCH
from .core import AUDIT_KEEP, RedisCore, log
from .scripts import with_prelude

AUDIT_KEEP_PER_USER = 10_000

WRITE_AUDIT = with_prelude(
    "write_audit",
    """
-- ARGV: prefix, records kept in all, records kept per account, then (user id or '', record)
-- pairs, oldest first: each goes to the head of the whole log and of its account's.
local everyone, users = P .. 'audit', {}
for i = 4, #ARGV, 2 do
  redis.call('LPUSH', everyone, ARGV[i + 1])
  if ARGV[i] ~= '' then
    users[ARGV[i]] = true
    redis.call('LPUSH', key('audit-user', ARGV[i]), ARGV[i + 1])
  end
end
redis.call('LTRIM', everyone, 0, tonumber(ARGV[2]) - 1)
for uid in pairs(users) do
  redis.call('LTRIM', key('audit-user', uid), 0, tonumber(ARGV[3]) - 1)
end
return {}
""",
)


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
        flat: list[Any] = []
        for user_id, record in batch:
            flat += [user_id or "", record]
        try:
            # one script, through the batcher: applied at most once (a pipeline under redis-py's
            # retry could write a batch twice when its reply was lost)
            await self._eval(
                WRITE_AUDIT, (), (self._prefix, AUDIT_KEEP, AUDIT_KEEP_PER_USER, *flat)
            )
        except StoreUnavailable:
            # Keep the batch (in order) for the next flush, up to a bound while Redis is down.
            self._pending_audit[:0] = batch
            dropped = len(self._pending_audit) - AUDIT_KEEP
            if dropped > 0:
                del self._pending_audit[:dropped]
                log.error("redis unavailable: dropped the %d oldest audit records", dropped)
            raise
