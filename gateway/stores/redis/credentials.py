"""Login sessions and the hot snapshot admission reads (the Credentials role)."""

from __future__ import annotations

from rules.sessions import Credential

from ..base import Snapshot
from . import codec
from .core import RedisCore
from .scripts import with_prelude

CREATE_LOGIN = with_prelude(
    "create_login",
    """
-- ARGV: prefix, credential (11). A login with a slot takes it from older sessions.
local out = {}
local uid, sid = put_credential(2)
if ARGV[10] ~= '' then
  redis.call('HSET', key('slots', uid), ARGV[10], sid)
  bump(uid, out)
end
return {'ok', out}
""",
)


SNAPSHOT = with_prelude(
    "snapshot",
    """
-- ARGV: prefix, token hash. {credential, account, effective registration, slots, epoch,
-- parent epoch, parent's egress address or ''}, read together; {} for an unknown token,
-- {credential} without an account.
local cred = redis.call('HGETALL', key('cred', ARGV[2]))
if #cred == 0 then return {} end
local uid = redis.call('HGET', key('cred', ARGV[2]), 'user_id')
local account = redis.call('HGETALL', key('account', uid))
if #account == 0 then return {cred} end
local parent = redis.call('HGET', key('account', uid), 'parent_id')
local parent_epoch = 0
local parent_egress = ''
if parent then
  parent_epoch = tonumber(redis.call('GET', key('epoch', parent)) or '0')
  parent_egress = redis.call('HGET', key('account', parent), 'egress_ip') or ''
end
return {cred, account, redis.call('HGETALL', key('reg', parent or uid)),
  redis.call('HGETALL', key('slots', uid)),
  tonumber(redis.call('GET', key('epoch', uid)) or '0'), parent_epoch, parent_egress}
""",
)


REVOKE_CREDENTIAL = with_prelude(
    "revoke_credential",
    """
-- ARGV: prefix, session id.
local out = {}
local cred = live_credential(ARGV[2])
if not cred then return {'none', out} end
redis.call('HSET', cred, 'revoked', '1')
bump(redis.call('HGET', cred, 'user_id'), out)
return {'ok', out}
""",
)


REVOKE_ACCOUNT = with_prelude(
    "revoke_account",
    """
-- ARGV: prefix, user id. Answers {'ok', epochs, live credentials revoked}.
local out = {}
local n = revoke_all(ARGV[2], out)
return {'ok', out, n}
""",
)


SESSIONS_OF = with_prelude(
    "sessions_of",
    """
-- ARGV: prefix, user id. {slots, credential, credential, ...}: the account's unrevoked ones.
local out = {redis.call('HGETALL', key('slots', ARGV[2]))}
for _, sid in ipairs(redis.call('SMEMBERS', key('sessions', ARGV[2]))) do
  local cred = live_credential(sid)
  if cred then out[#out + 1] = redis.call('HGETALL', cred) end
end
return out
""",
)


class RedisCredentials(RedisCore):
    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        await self._run(CREATE_LOGIN, *self._credential_args(credential, token_hash))
        return credential

    def _is_current(self, snapshot: Snapshot) -> bool:
        account = snapshot.account
        if self._epochs.get(account.user_id, -1) > snapshot.epoch:
            return False
        parent = account.parent_id
        return parent is None or self._epochs.get(parent, -1) <= snapshot.parent_epoch

    async def snapshot(self, token_hash: str) -> Snapshot | None:
        cached = self._snapshots.get(token_hash)
        if cached is not None and self._is_current(cached):
            return cached
        # Unknown tokens are not cached: a login on another instance must work here at once.
        reply = await self._eval(SNAPSHOT, (), (self._prefix, token_hash))
        if len(reply) < 7:
            self._snapshots.pop(token_hash, None)
            return None
        cred, account_fields, registration, slots, epoch, parent_epoch, parent_egress = reply
        account = codec.account(codec.fields(account_fields))
        snap = Snapshot(
            credential=codec.credential(codec.fields(cred)),
            account=account,
            registration=codec.registration(codec.fields(registration)),
            slot_holders={k.decode(): v.decode() for k, v in codec.fields(slots).items()},
            epoch=int(epoch),
            parent_epoch=int(parent_epoch),
            egress_ip=account.egress_ip or codec.text(parent_egress),
        )
        self._learn(snap.account.user_id, snap.epoch)
        if snap.account.parent_id is not None:
            self._learn(snap.account.parent_id, snap.parent_epoch)
        self._snapshots[token_hash] = snap
        return snap

    async def verify(self, snapshot: Snapshot) -> None:
        keys, _ = self._epoch_keys(snapshot)
        self._check_epochs(snapshot, await self._cmd("MGET", *keys))

    async def revoke_credential(self, session_id: str) -> bool:
        reply = await self._run(REVOKE_CREDENTIAL, session_id)
        return bool(reply[0] == b"ok")

    async def sessions_of(self, user_id: str) -> tuple[list[Credential], dict[str, str]]:
        slots, *creds = await self._eval(SESSIONS_OF, (), (self._prefix, user_id))
        found = sorted(
            (codec.credential(codec.fields(c)) for c in creds), key=lambda c: c.created_at
        )
        return found, {k.decode(): v.decode() for k, v in codec.fields(slots).items()}

    async def revoke_account(self, user_id: str) -> int:
        reply = await self._run(REVOKE_ACCOUNT, user_id)
        return int(reply[2])
