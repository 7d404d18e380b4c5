"""The rate window (the Admission role), SPEC §7: one EVALSHA per order."""

from __future__ import annotations

from rules.ratelimit import wait_for

from ..base import Snapshot
from .core import RedisCore
from .scripts import standalone

# The hot path: one EVALSHA per order. KEYS: the account's rate ZSET, its epoch, and the
# parent's epoch for a family member. ARGV: now (epoch s), window (s), limit, a unique member,
# count, the epochs the snapshot was read at. Same algorithm as
# rules.ratelimit.SlidingWindowLimiter, bit for bit: an admission at t has expired when
# t <= now - window (the bound computed in doubles, passed to Redis as %.17g, which strtod
# reads back exactly); ``count`` slots are taken at once or none.  Its cost does not grow
# with the admissions in the window: ZREMRANGEBYSCORE drops what expired (O(log n) plus what
# it removes), ZCARD counts, and a refusal reads the one entry that must leave last.
ADMIT = standalone(
    "admit",
    """
local current, stale = {}, false
for i = 2, #KEYS do
  local epoch = tonumber(redis.call('GET', KEYS[i]) or '0')
  current[#current + 1] = epoch
  if epoch ~= tonumber(ARGV[4 + i]) then stale = true end
end
if stale then return {'stale', current} end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, count = tonumber(ARGV[3]), tonumber(ARGV[5])
if count > limit then return {'limited', current, ARGV[2]} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now - window))
local excess = redis.call('ZCARD', KEYS[1]) + count - limit
if excess > 0 then
  local last = redis.call('ZRANGE', KEYS[1], excess - 1, excess - 1, 'WITHSCORES')
  local wait = tonumber(last[2]) + window - now
  if wait < 1e-6 then wait = 1e-6 end
  return {'limited', current, string.format('%.17g', wait)}
end
local entries = {}
for i = 1, count do
  entries[#entries + 1] = ARGV[1]
  entries[#entries + 1] = ARGV[4] .. ':' .. i
end
redis.call('ZADD', KEYS[1], unpack(entries))
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) * 2 + 1000)
return {'ok', current}
""",
)


class RedisAdmission(RedisCore):
    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        keys, expected = self._epoch_keys(snapshot)
        reply = await self._eval(
            ADMIT,
            [self._key("rate", snapshot.account.user_id), *keys],
            [repr(float(now)), repr(float(window)), limit, next(self._members), count, *expected],
        )
        self._check_epochs(snapshot, reply[1])
        if reply[0] == b"limited":
            return float(reply[2])
        return None

    async def peek_admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> tuple[int, float | None]:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        # Read only: what ADMIT keeps after its ZREMRANGEBYSCORE (scores above now - window,
        # the bound written as ADMIT writes it), judged by the same rule.
        rows = await self._cmd(
            "ZRANGEBYSCORE",
            self._key("rate", snapshot.account.user_id),
            "(%.17g" % (now - window),
            "+inf",
            "WITHSCORES",
        )
        # redis-py answers WITHSCORES as [member, score] pairs (RESP3) or one flat list
        pairs = (
            rows
            if rows and isinstance(rows[0], list | tuple)
            else zip(rows[::2], rows[1::2], strict=True)
        )
        scores = [float(score) for _, score in pairs]
        wait = wait_for(scores, now=now, limit=limit, window=window, count=count)
        return len(scores), wait
