"""``Idempotency-Key`` claims (the Idempotency role), SPEC §10; ``KEYS[1]`` is the record."""

from __future__ import annotations

from typing import Any

import orjson

from ..base import IdempotencyRecord
from . import codec
from .core import RedisCore
from .scripts import standalone

_IDEMPOTENCY_TTL_MS = 86_400_000


BEGIN_IDEMPOTENT = standalone(
    "begin_idempotent",
    """
-- ARGV: body hash, ttl (ms). {} when claimed now, else the existing record's fields.
local found = redis.call('HGETALL', KEYS[1])
if #found > 0 then return found end
redis.call('HSET', KEYS[1], 'body_hash', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {}
""",
)


FINISH_IDEMPOTENT = standalone(
    "finish_idempotent",
    """
-- ARGV: status, headers (JSON), body, ttl (ms).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'headers', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
""",
)


RELEASE_IDEMPOTENT = standalone(
    "release_idempotent",
    """
if redis.call('HEXISTS', KEYS[1], 'status') == 0 then redis.call('DEL', KEYS[1]) end
return 1
""",
)


class RedisIdempotency(RedisCore):
    def _idem_key(self, record: IdempotencyRecord) -> list[str]:
        return [self._key("idem", orjson.dumps([record.user_id, record.key]).decode())]

    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        found = await self._eval(
            BEGIN_IDEMPOTENT,
            self._idem_key(record),
            [record.body_hash, _IDEMPOTENCY_TTL_MS],
        )
        return _record(record.user_id, record.key, found)

    async def peek_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        probe = IdempotencyRecord(user_id=user_id, key=key, body_hash="")
        return _record(user_id, key, await self._cmd("HGETALL", self._idem_key(probe)[0]))

    async def finish_idempotent(self, record: IdempotencyRecord) -> None:
        await self._eval(
            FINISH_IDEMPOTENT,
            self._idem_key(record),
            [record.status, orjson.dumps(dict(record.headers)), record.body, _IDEMPOTENCY_TTL_MS],
        )

    async def release_idempotent(self, record: IdempotencyRecord) -> None:
        await self._eval(RELEASE_IDEMPOTENT, self._idem_key(record), [])


def _record(user_id: str, key: str, found: Any) -> IdempotencyRecord | None:
    """The record from a hash's fields (an empty reply: there is none)."""
    if not found:
        return None
    h = codec.fields(found)
    status = h.get(b"status")
    return IdempotencyRecord(
        user_id=user_id,
        key=key,
        body_hash=h[b"body_hash"].decode(),
        status=None if status is None else int(status),
        headers=orjson.loads(h.get(b"headers", b"{}")),
        body=h.get(b"body", b""),
    )
