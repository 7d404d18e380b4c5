"""API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9 (the Tokens role).

Writes decided by ``rules.tokens`` are committed only on the facts they were decided on: an
allowlist only on a token that is still live, an analytics token only if the account's
unrevoked one is still the one the decision retires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rules.sessions import Credential
from rules.types import IPNetwork

from ..base import ApiToken, Commit
from . import codec
from .core import RedisCore
from .scripts import with_prelude

CREATE_API_CREDENTIAL = with_prelude(
    "create_api_token",
    """
-- ARGV: prefix, credential (11), lookup id, name, kind, created at, last updated at.
local uid, sid = put_credential(2)
local token = key('apitoken', ARGV[13])
redis.call('HSET', token, 'lookup_id', ARGV[13], 'token_id', sid, 'user_id', uid,
  'name', ARGV[14], 'kind', ARGV[15], 'allowed_cidrs', ARGV[11], 'created_at', ARGV[16],
  'expiry_at', ARGV[8], 'expiry_us', ARGV[9], 'last_updated_at', ARGV[17], 'revoked_at', '')
-- Listed oldest first: by created_at, then in the order they were created.
redis.call('ZADD', key('apitokens', uid), redis.call('INCR', P .. 'apitoken-seq'), ARGV[13])
return {'ok', {}}
""",
)


API_TOKENS = with_prelude(
    "api_tokens",
    """
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
""",
)


REVOKE_API_CREDENTIAL = with_prelude(
    "revoke_api_token",
    """
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
""",
)


REPLACE_API_CIDRS = with_prelude(
    "replace_api_token_cidrs",
    """
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
""",
)


LIVE_ANALYTICS = with_prelude(
    "live_analytics",
    """
-- ARGV: prefix, user id. The account's unrevoked analytics credential's hash, or {}.
local cred = live_credential(redis.call('GET', key('analytics', ARGV[2])))
if not cred then return {} end
return redis.call('HGETALL', cred)
""",
)


CREATE_ANALYTICS = with_prelude(
    "create_analytics",
    """
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
""",
)


REVOKE_ANALYTICS = with_prelude(
    "revoke_analytics",
    """
-- ARGV: prefix, user id.
local out = {}
local cred = live_credential(redis.call('GET', key('analytics', ARGV[2])))
if not cred then return {'none', out} end
redis.call('HSET', cred, 'revoked', '1')
bump(ARGV[2], out)
return {'ok', out}
""",
)


class RedisTokens(RedisCore):
    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        await self._run(
            CREATE_API_CREDENTIAL,
            *self._credential_args(credential, token_hash),
            token.lookup_id,
            token.name,
            token.kind,
            codec.ts(token.created_at),
            codec.ts(token.last_updated_at),
        )
        return token

    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        reply = await self._run(API_TOKENS, user_id, codec.ts(now))
        # In creation order already; a stable sort by created_at keeps it among equal times.
        tokens = sorted(
            (codec.api_token(codec.fields(h)) for h in reply[2] if h), key=lambda t: t.created_at
        )
        if kind is not None:
            tokens = [t for t in tokens if t.kind == kind]
        if with_invalid:
            return tokens
        return [t for t in tokens if t.live_at(now)]

    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        reply = await self._run(REVOKE_API_CREDENTIAL, user_id, lookup_id, codec.ts(now))
        return codec.api_token(codec.fields(reply[2])) if reply[0] == b"ok" else None

    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        reply = await self._run(
            REPLACE_API_CIDRS,
            user_id,
            lookup_id,
            codec.cidrs_json(cidrs),
            codec.ts(now),
            codec.us(now),
        )
        return codec.api_token(codec.fields(reply[2])) if reply[0] == b"ok" else None

    async def live_analytics_token(self, user_id: str) -> Credential | None:
        found = await self._eval(LIVE_ANALYTICS, (), (self._prefix, user_id))
        return codec.credential(codec.fields(found)) if found else None

    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        reply = await self._run(
            CREATE_ANALYTICS, *self._credential_args(credential, token_hash), retire or ""
        )
        return Commit.DONE if reply[0] == b"ok" else Commit.STALE

    async def revoke_analytics_token(self, user_id: str) -> bool:
        reply = await self._run(REVOKE_ANALYTICS, user_id)
        return bool(reply[0] == b"ok")
