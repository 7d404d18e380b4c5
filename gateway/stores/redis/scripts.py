"""The Redis store's Lua plumbing: every read-decide-write runs in one script, so it is atomic.

Conventions, shared by every script:

- ``ARGV[1]`` is the key prefix; keys are ``<prefix><kind>:<id>`` (see ``RedisStore``).
  Scripts that follow references (token hash -> account -> parent -> registration) build
  their keys inside, so the store needs a standalone Redis (or one primary), not a Cluster.
- A writing script answers ``{status, epochs, payload...}``: ``status`` is a short string,
  ``epochs`` a flat ``{user_id, epoch, ...}`` list of the accounts it invalidated, each
  bumped (INCR) in the same atomic step as the write that made their snapshots stale.
- ``nil`` never crosses into Python: absent optional values are stored as ``""``.
- Floats are returned as ``%.17g`` strings (Redis truncates Lua numbers to integers).

Each script lives beside the module that runs it; this module holds what they share.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["Script", "standalone", "with_prelude"]


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)


PRELUDE = """
local P = ARGV[1]
local function key(kind, id) return P .. kind .. ':' .. id end

local function bump(uid, out)
  out[#out + 1] = uid
  out[#out + 1] = redis.call('INCR', key('epoch', uid))
end

-- Drop session ids whose credential expired (Redis removed it at its TTL).
local function prune(sessions)
  for _, sid in ipairs(redis.call('SMEMBERS', sessions)) do
    if redis.call('EXISTS', key('sid', sid)) == 0 then redis.call('SREM', sessions, sid) end
  end
end

-- Revoke every credential of an account and free its order slots; returns how many were live.
local function revoke_all(uid, out)
  local n = 0
  local sessions = key('sessions', uid)
  for _, sid in ipairs(redis.call('SMEMBERS', sessions)) do
    local th = redis.call('GET', key('sid', sid))
    if not th then
      redis.call('SREM', sessions, sid)
    elseif redis.call('HGET', key('cred', th), 'revoked') == '0' then
      redis.call('HSET', key('cred', th), 'revoked', '1')
      n = n + 1
    end
  end
  redis.call('DEL', key('slots', uid))
  bump(uid, out)
  return n
end

-- A credential from ARGV[i..i+10]: token hash, session id, user id, kind, created ip,
-- created at, expires at, expires (us), slot, allowed cidrs (JSON), expire-at (ms).
local function put_credential(i)
  local th, sid, uid, pxat = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 10]
  local cred = key('cred', th)
  redis.call('HSET', cred, 'session_id', sid, 'user_id', uid, 'kind', ARGV[i + 3],
    'created_ip', ARGV[i + 4], 'created_at', ARGV[i + 5], 'expires_at', ARGV[i + 6],
    'expires_us', ARGV[i + 7], 'slot', ARGV[i + 8], 'allowed_cidrs', ARGV[i + 9],
    'revoked', '0')
  redis.call('PEXPIREAT', cred, pxat)
  redis.call('SET', key('sid', sid), th, 'PXAT', pxat)
  local sessions = key('sessions', uid)
  redis.call('SADD', sessions, sid)
  if redis.call('SCARD', sessions) > 64 then prune(sessions) end
  return uid, sid
end

local function live_credential(sid)
  local th = sid and redis.call('GET', key('sid', sid))
  if th and redis.call('HGET', key('cred', th), 'revoked') == '0' then return key('cred', th) end
  return nil
end
"""


def with_prelude(name: str, source: str) -> Script:
    """A script that takes the key prefix as ``ARGV[1]`` and may use the prelude's helpers."""
    return Script(name, PRELUDE + source)


def standalone(name: str, source: str) -> Script:
    """A script on ``KEYS`` only (the hot path and idempotency): no prelude to parse."""
    return Script(name, source)
