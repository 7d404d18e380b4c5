"""The Redis store's Lua scripts: every read-decide-write runs in one script, so it is atomic.

Conventions, shared by every script:

- ``ARGV[1]`` is the key prefix; keys are ``<prefix><kind>:<id>`` (see ``RedisStore``).
  Scripts that follow references (token hash -> account -> parent -> registration) build
  their keys inside, so the store needs a standalone Redis (or one primary), not a Cluster.
- A writing script answers ``{status, epochs, payload...}``: ``status`` is a short string,
  ``epochs`` a flat ``{user_id, epoch, ...}`` list of the accounts it invalidated, each
  bumped (INCR) in the same atomic step as the write that made their snapshots stale.
- ``nil`` never crosses into Python: absent optional values are stored as ``""``.
- Floats are returned as ``%.17g`` strings (Redis truncates Lua numbers to integers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["Script", "scripts"]


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)


_PRELUDE = """
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

-- What rules.family.check_join decides from, as strings (compared with the expected ones).
local function join_facts(parent, member)
  local pa, ma = key('account', parent), key('account', member)
  return {tostring(redis.call('EXISTS', pa)), redis.call('HGET', pa, 'parent_id') or '',
    tostring(redis.call('EXISTS', ma)), redis.call('HGET', ma, 'parent_id') or '',
    tostring(redis.call('SCARD', key('members', member))),
    tostring(redis.call('SCARD', key('members', parent)))}
end

local function live_credential(sid)
  local th = sid and redis.call('GET', key('sid', sid))
  if th and redis.call('HGET', key('cred', th), 'revoked') == '0' then return key('cred', th) end
  return nil
end
"""

_CREATE_ACCOUNT = """
-- ARGV: prefix, user id, parent id or '', field/value pairs...
local account = key('account', ARGV[2])
if redis.call('EXISTS', account) == 1 then return {'exists', {}} end
redis.call('HSET', account, unpack(ARGV, 4))
redis.call('SADD', P .. 'accounts', ARGV[2])
if ARGV[3] ~= '' then redis.call('SADD', key('members', ARGV[3]), ARGV[2]) end
return {'ok', {}}
"""

_SET_UPSTREAM_AUTH = """
-- ARGV: prefix, user id, field ('upstream_auth:<dialect>'), header JSON or '' to remove.
-- The account's epoch moves in the same step: every cached snapshot carries the old value.
local account = key('account', ARGV[2])
if redis.call('EXISTS', account) == 0 then return {'none', {}} end
if ARGV[4] == '' then
  redis.call('HDEL', account, ARGV[3])
else
  redis.call('HSET', account, ARGV[3], ARGV[4])
end
local out = {}
bump(ARGV[2], out)
return {'ok', out}
"""

_SET_ALGO = """
-- ARGV: prefix, user id, algo id or '', algo name or '' ('' removes).
local account = key('account', ARGV[2])
if redis.call('EXISTS', account) == 0 then return {'none', {}} end
for i, name in ipairs({'algo_id', 'algo_name'}) do
  if ARGV[2 + i] == '' then
    redis.call('HDEL', account, name)
  else
    redis.call('HSET', account, name, ARGV[2 + i])
  end
end
local out = {}
bump(ARGV[2], out)
return {'ok', out}
"""

_ACCOUNTS_IN = """
-- ARGV: prefix, the set of user ids ('accounts' or 'members:<parent>'). The accounts' hashes.
local found = {}
for _, uid in ipairs(redis.call('SMEMBERS', P .. ARGV[2])) do
  found[#found + 1] = redis.call('HGETALL', key('account', uid))
end
return found
"""

_CREATE_LOGIN = """
-- ARGV: prefix, credential (11). A login with a slot takes it from older sessions.
local out = {}
local uid, sid = put_credential(2)
if ARGV[10] ~= '' then
  redis.call('HSET', key('slots', uid), ARGV[10], sid)
  bump(uid, out)
end
return {'ok', out}
"""

_CREATE_API_CREDENTIAL = """
-- ARGV: prefix, credential (11), lookup id, name, kind, created at, last updated at.
local uid, sid = put_credential(2)
local token = key('apitoken', ARGV[13])
redis.call('HSET', token, 'lookup_id', ARGV[13], 'token_id', sid, 'user_id', uid,
  'name', ARGV[14], 'kind', ARGV[15], 'allowed_cidrs', ARGV[11], 'created_at', ARGV[16],
  'expiry_at', ARGV[8], 'expiry_us', ARGV[9], 'last_updated_at', ARGV[17], 'revoked_at', '')
-- Listed oldest first: by created_at, then in the order they were created.
redis.call('ZADD', key('apitokens', uid), redis.call('INCR', P .. 'apitoken-seq'), ARGV[13])
return {'ok', {}}
"""

_LIVE_ANALYTICS = """
-- ARGV: prefix, user id. The account's unrevoked analytics credential's hash, or {}.
local cred = live_credential(redis.call('GET', key('analytics', ARGV[2])))
if not cred then return {} end
return redis.call('HGETALL', cred)
"""

_CREATE_ANALYTICS = """
-- ARGV: prefix, credential (11), the session id of the unrevoked one it retires ('' none).
-- Written only if that is still the account's unrevoked one (rules.tokens decided on it).
local out = {}
local uid = ARGV[4]
local pointer = key('analytics', uid)
local current = redis.call('GET', pointer)
local old = live_credential(current)
if (old and current or '') ~= ARGV[13] then return {'stale', out} end
if old then
  redis.call('HSET', old, 'revoked', '1')
  bump(uid, out)
end
local _, sid = put_credential(2)
redis.call('SET', pointer, sid, 'PXAT', ARGV[12])
return {'ok', out}
"""

_REVOKE_ANALYTICS = """
-- ARGV: prefix, user id.
local out = {}
local cred = live_credential(redis.call('GET', key('analytics', ARGV[2])))
if not cred then return {'none', out} end
redis.call('HSET', cred, 'revoked', '1')
bump(ARGV[2], out)
return {'ok', out}
"""

_SNAPSHOT = """
-- ARGV: prefix, token hash. {credential, account, effective registration, slots, epoch,
-- parent epoch}, read together; {} for an unknown token, {credential} without an account.
local cred = redis.call('HGETALL', key('cred', ARGV[2]))
if #cred == 0 then return {} end
local uid = redis.call('HGET', key('cred', ARGV[2]), 'user_id')
local account = redis.call('HGETALL', key('account', uid))
if #account == 0 then return {cred} end
local parent = redis.call('HGET', key('account', uid), 'parent_id')
local parent_epoch = 0
if parent then parent_epoch = tonumber(redis.call('GET', key('epoch', parent)) or '0') end
return {cred, account, redis.call('HGETALL', key('reg', parent or uid)),
  redis.call('HGETALL', key('slots', uid)),
  tonumber(redis.call('GET', key('epoch', uid)) or '0'), parent_epoch}
"""

_REVOKE_CREDENTIAL = """
-- ARGV: prefix, session id.
local out = {}
local cred = live_credential(ARGV[2])
if not cred then return {'none', out} end
redis.call('HSET', cred, 'revoked', '1')
bump(redis.call('HGET', cred, 'user_id'), out)
return {'ok', out}
"""

_REVOKE_ACCOUNT = """
-- ARGV: prefix, user id. Answers {'ok', epochs, live credentials revoked}.
local out = {}
local n = revoke_all(ARGV[2], out)
return {'ok', out, n}
"""

_APPLY_IP_CHANGE = """
-- ARGV: prefix, user id, expected version, primary, secondary, primary updated at,
-- secondary updated at, changed at, version, then the new canonical IPs, sorted.
local uid = ARGV[2]
local reg = key('reg', uid)
if tonumber(redis.call('HGET', reg, 'version') or '0') ~= tonumber(ARGV[3]) then
  return {'concurrent', {}}
end
local members = redis.call('SMEMBERS', key('members', uid))
local family = {[uid] = true}
for _, m in ipairs(members) do family[m] = true end
for i = 10, #ARGV do
  for _, holder in ipairs(redis.call('SMEMBERS', key('ip', ARGV[i]))) do
    if not family[holder] then return {'taken', {}, ARGV[i]} end
  end
end
for _, old in ipairs(redis.call('HMGET', reg, 'primary', 'secondary')) do
  if old and old ~= '' then redis.call('SREM', key('ip', old), uid) end
end
for i = 10, #ARGV do redis.call('SADD', key('ip', ARGV[i]), uid) end
redis.call('HSET', reg, 'primary', ARGV[4], 'secondary', ARGV[5],
  'primary_updated_at', ARGV[6], 'secondary_updated_at', ARGV[7], 'changed_at', ARGV[8],
  'version', ARGV[9])
local out = {}
revoke_all(uid, out)
for _, m in ipairs(members) do revoke_all(m, out) end
return {'ok', out}
"""

_JOIN_FACTS = """
-- ARGV: prefix, parent id, member id.
return join_facts(ARGV[2], ARGV[3])
"""

_ADD_FAMILY_MEMBER = """
-- ARGV: prefix, parent id, member id, the six join facts the join was decided on.
-- Written only if they still hold (rules.family decided on them).
local parent, member = ARGV[2], ARGV[3]
local facts = join_facts(parent, member)
for i = 1, #facts do
  if facts[i] ~= ARGV[3 + i] then return {'stale', {}} end
end
local ma = key('account', member)
redis.call('HSET', ma, 'parent_id', parent)
redis.call('SADD', key('members', parent), member)
-- It trades from the parent's IPs now; its own registration would otherwise keep holding
-- addresses outside the family once it leaves.
local reg = key('reg', member)
for _, old in ipairs(redis.call('HMGET', reg, 'primary', 'secondary')) do
  if old and old ~= '' then redis.call('SREM', key('ip', old), member) end
end
redis.call('DEL', reg)
-- The member now trades from the parent's IPs: sessions bound to its own registration end.
local out = {}
revoke_all(member, out)
return {'ok', out}
"""

_REMOVE_FAMILY_MEMBER = """
-- ARGV: prefix, parent id, member id.
local parent, member = ARGV[2], ARGV[3]
if redis.call('HGET', key('account', member), 'parent_id') ~= parent then return {'none', {}} end
redis.call('HDEL', key('account', member), 'parent_id')
redis.call('SREM', key('members', parent), member)
local out = {}
revoke_all(member, out)
return {'ok', out}
"""

_API_TOKENS = """
-- ARGV: prefix, user id, now. The account's token hashes; a token whose credential was
-- revoked elsewhere (IP change, admin) gets revoked_at = now the first time it is listed.
local tokens = {}
for _, lookup in ipairs(redis.call('ZRANGE', key('apitokens', ARGV[2]), 0, -1)) do
  local token = key('apitoken', lookup)
  if redis.call('HGET', token, 'revoked_at') == '' then
    local th = redis.call('GET', key('sid', redis.call('HGET', token, 'token_id')))
    if th and redis.call('HGET', key('cred', th), 'revoked') == '1' then
      redis.call('HSET', token, 'revoked_at', ARGV[3], 'last_updated_at', ARGV[3])
    end
  end
  tokens[#tokens + 1] = redis.call('HGETALL', token)
end
return {'ok', {}, tokens}
"""

_REVOKE_API_CREDENTIAL = """
-- ARGV: prefix, user id, lookup id, now.
local token = key('apitoken', ARGV[3])
if redis.call('HGET', token, 'user_id') ~= ARGV[2] then return {'none', {}} end
local out = {}
local cred = live_credential(redis.call('HGET', token, 'token_id'))
if cred then
  redis.call('HSET', cred, 'revoked', '1')
  bump(ARGV[2], out)
end
if redis.call('HGET', token, 'revoked_at') == '' then
  redis.call('HSET', token, 'revoked_at', ARGV[4], 'last_updated_at', ARGV[4])
end
return {'ok', out, redis.call('HGETALL', token)}
"""

_REPLACE_API_CIDRS = """
-- ARGV: prefix, user id, lookup id, cidrs (JSON), now, now (us). Only on a token that is
-- still live (rules.tokens decided on a live one): else nothing is written.
local token = key('apitoken', ARGV[3])
if redis.call('HGET', token, 'user_id') ~= ARGV[2] then return {'none', {}} end
local cred = live_credential(redis.call('HGET', token, 'token_id'))
if not cred or redis.call('HGET', token, 'revoked_at') ~= ''
    or tonumber(ARGV[6]) >= tonumber(redis.call('HGET', token, 'expiry_us')) then
  return {'none', {}}
end
redis.call('HSET', cred, 'allowed_cidrs', ARGV[4])
redis.call('HSET', token, 'allowed_cidrs', ARGV[4], 'last_updated_at', ARGV[5])
local out = {}
bump(ARGV[2], out)
return {'ok', out, redis.call('HGETALL', token)}
"""

# The hot path: one EVALSHA per order. KEYS: the account's rate ZSET, its epoch, and the
# parent's epoch for a family member. ARGV: now (epoch s), window (s), limit, a unique member,
# count, the epochs the snapshot was read at. Same algorithm as
# rules.ratelimit.SlidingWindowLimiter, bit for bit: an admission at t has expired when
# t <= now - window (the bound computed in doubles, passed to Redis as %.17g, which strtod
# reads back exactly); ``count`` slots are taken at once or none.  Its cost does not grow
# with the admissions in the window: ZREMRANGEBYSCORE drops what expired (O(log n) plus what
# it removes), ZCARD counts, and a refusal reads the one entry that must leave last.
_ADMIT = """
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
"""

# Idempotency (SPEC §10): KEYS[1] is the (account, key) record.
_BEGIN_IDEMPOTENT = """
-- ARGV: body hash, ttl (ms). {} when claimed now, else the existing record's fields.
local found = redis.call('HGETALL', KEYS[1])
if #found > 0 then return found end
redis.call('HSET', KEYS[1], 'body_hash', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {}
"""

_FINISH_IDEMPOTENT = """
-- ARGV: status, headers (JSON), body, ttl (ms).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'headers', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_RELEASE_IDEMPOTENT = """
if redis.call('HEXISTS', KEYS[1], 'status') == 0 then redis.call('DEL', KEYS[1]) end
return 1
"""

_STANDALONE = {"admit", "begin_idempotent", "finish_idempotent", "release_idempotent"}


def _scripts() -> dict[str, Script]:
    sources = {
        "create_account": _CREATE_ACCOUNT,
        "set_upstream_auth": _SET_UPSTREAM_AUTH,
        "set_algo": _SET_ALGO,
        "accounts_in": _ACCOUNTS_IN,
        "create_login": _CREATE_LOGIN,
        "create_api_token": _CREATE_API_CREDENTIAL,
        "live_analytics": _LIVE_ANALYTICS,
        "create_analytics": _CREATE_ANALYTICS,
        "revoke_analytics": _REVOKE_ANALYTICS,
        "snapshot": _SNAPSHOT,
        "revoke_credential": _REVOKE_CREDENTIAL,
        "revoke_account": _REVOKE_ACCOUNT,
        "apply_ip_change": _APPLY_IP_CHANGE,
        "join_facts": _JOIN_FACTS,
        "add_family_member": _ADD_FAMILY_MEMBER,
        "remove_family_member": _REMOVE_FAMILY_MEMBER,
        "api_tokens": _API_TOKENS,
        "revoke_api_token": _REVOKE_API_CREDENTIAL,
        "replace_api_token_cidrs": _REPLACE_API_CIDRS,
        "admit": _ADMIT,
        "begin_idempotent": _BEGIN_IDEMPOTENT,
        "finish_idempotent": _FINISH_IDEMPOTENT,
        "release_idempotent": _RELEASE_IDEMPOTENT,
    }
    return {
        name: Script(name, source if name in _STANDALONE else _PRELUDE + source)
        for name, source in sources.items()
    }


scripts = _scripts()
