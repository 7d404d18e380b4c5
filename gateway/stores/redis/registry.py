"""The static-IP registry and families (the Registry role), SPEC §4, §9.

An IP change is written only at the version it was decided on and only if no account outside
the family holds its addresses; a join only if the facts ``rules.family`` decided it on
still hold.  Each is one script, answering a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rules.family import JoinFacts
from rules.ip import canonical
from rules.registry import IpCommit, IpCommitted, Registration

from ..base import Account, Commit, Invitation
from . import codec
from .core import RedisCore
from .scripts import with_prelude

_JOIN_FACTS = """
-- What rules.family.check_join decides from, as strings (compared with the expected ones).
local function join_facts(parent, member)
  local pa, ma = key('account', parent), key('account', member)
  return {tostring(redis.call('EXISTS', pa)), redis.call('HGET', pa, 'parent_id') or '',
    tostring(redis.call('EXISTS', ma)), redis.call('HGET', ma, 'parent_id') or '',
    tostring(redis.call('SCARD', key('members', member))),
    tostring(redis.call('SCARD', key('members', parent))),
    redis.call('HGET', key('invites', member), parent) or ''}
end
"""

APPLY_IP_CHANGE = with_prelude(
    "apply_ip_change",
    """
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
""",
)


JOIN_FACTS = with_prelude(
    "join_facts",
    _JOIN_FACTS
    + """
-- ARGV: prefix, parent id, member id.
return join_facts(ARGV[2], ARGV[3])
""",
)


ADD_FAMILY_MEMBER = with_prelude(
    "add_family_member",
    _JOIN_FACTS
    + """
-- ARGV: prefix, parent id, member id, the seven join facts the join was decided on.
-- Written only if they still hold (rules.family decided on them).
local parent, member = ARGV[2], ARGV[3]
local facts = join_facts(parent, member)
for i = 1, #facts do
  if facts[i] ~= ARGV[3 + i] then return {'stale', {}} end
end
local ma = key('account', member)
redis.call('HSET', ma, 'parent_id', parent)
redis.call('SADD', key('members', parent), member)
redis.call('HDEL', key('invites', member), parent)
-- Its own registration stays: its addresses remain reserved to it while it is in the
-- family, and its change period keeps running (SPEC 9).  It trades from the parent's IPs
-- now, so the sessions bound to its own IPs end here.
local out = {}
revoke_all(member, out)
return {'ok', out}
""",
)


REMOVE_FAMILY_MEMBER = with_prelude(
    "remove_family_member",
    """
-- ARGV: prefix, parent id, member id.
local parent, member = ARGV[2], ARGV[3]
if redis.call('HGET', key('account', member), 'parent_id') ~= parent then return {'none', {}} end
redis.call('HDEL', key('account', member), 'parent_id')
redis.call('SREM', key('members', parent), member)
-- Its former addresses are free again once it left; its last change time stays, so it
-- registers new ones only when its period allows (SPEC 9).
local reg = key('reg', member)
if redis.call('EXISTS', reg) == 1 then
  for _, old in ipairs(redis.call('HMGET', reg, 'primary', 'secondary')) do
    if old and old ~= '' then redis.call('SREM', key('ip', old), member) end
  end
  redis.call('HSET', reg, 'primary', '', 'secondary', '', 'primary_updated_at', '',
    'secondary_updated_at', '')
  redis.call('HINCRBY', reg, 'version', 1)
end
local out = {}
revoke_all(member, out)
return {'ok', out}
""",
)


INVITATIONS = with_prelude(
    "invitations",
    """
-- ARGV: prefix, member id. {parent id, parent's name, invited at, ...}.
local found = {}
local invites = redis.call('HGETALL', key('invites', ARGV[2]))
for i = 1, #invites, 2 do
  local name = redis.call('HGET', key('account', invites[i]), 'name')
  if name then
    found[#found + 1] = invites[i]
    found[#found + 1] = name
    found[#found + 1] = invites[i + 1]
  end
end
return found
""",
)

_INVITATION_KEEP_MS = 8 * 86_400_000  # past the 7 days an invitation lasts (rules.family)


class RedisRegistry(RedisCore):
    async def get_registration(self, user_id: str) -> Registration:
        return codec.registration(await self._cmd("HGETALL", self._key("reg", user_id)))

    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        # Stored canonical, so uniqueness never compares raw strings (SPEC §4).
        primary = "" if new.primary is None else str(canonical(new.primary))
        secondary = "" if new.secondary is None else str(canonical(new.secondary))
        reply = await self._run(
            APPLY_IP_CHANGE,
            user_id,
            expected_version,
            primary,
            secondary,
            codec.ts(new.primary_updated_at),
            codec.ts(new.secondary_updated_at),
            codec.ts(new.changed_at),
            new.version,
            *sorted(ip for ip in (primary, secondary) if ip),
        )
        if reply[0] == b"concurrent":
            return IpCommitted(IpCommit.VERSION_MOVED)
        if reply[0] == b"taken":
            return IpCommitted(IpCommit.TAKEN, reply[2].decode())
        return IpCommitted(IpCommit.APPLIED)

    async def family_members(self, parent_id: str) -> Sequence[Account]:
        return await self._accounts_in(f"members:{parent_id}")

    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        facts = await self._eval(JOIN_FACTS, (), (self._prefix, parent_id, member_id))
        parent_exists, parent_family, member_exists, member_family, theirs, mine, invited = facts
        return JoinFacts(
            parent_exists=parent_exists == b"1",
            parent_family=codec.text(parent_family),
            member_exists=member_exists == b"1",
            member_family=codec.text(member_family),
            member_members=int(theirs),
            members=int(mine),
            invited_at=codec.dt(invited),
        )

    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit:
        facts = (
            "1" if expected.parent_exists else "0",
            expected.parent_family or "",
            "1" if expected.member_exists else "0",
            expected.member_family or "",
            str(expected.member_members),
            str(expected.members),
            codec.ts(expected.invited_at),
        )
        reply = await self._run(ADD_FAMILY_MEMBER, parent_id, member_id, *facts)
        return Commit.DONE if reply[0] == b"ok" else Commit.STALE

    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        reply = await self._run(REMOVE_FAMILY_MEMBER, parent_id, member_id)
        return bool(reply[0] == b"ok")

    async def invite(self, parent_id: str, member_id: str, *, at: datetime) -> None:
        invites = self._key("invites", member_id)
        await self._cmd("HSET", invites, parent_id, codec.ts(at))
        await self._cmd("PEXPIRE", invites, _INVITATION_KEEP_MS)

    async def invitations(self, member_id: str) -> Sequence[Invitation]:
        flat = await self._eval(INVITATIONS, (), (self._prefix, member_id))
        found = [
            Invitation(parent.decode(), name.decode(), codec.at(when))
            for parent, name, when in zip(flat[::3], flat[1::3], flat[2::3], strict=True)
        ]
        return sorted(found, key=lambda i: (i.invited_at, i.parent_id))

    async def drop_invitation(self, parent_id: str, member_id: str) -> bool:
        return bool(await self._cmd("HDEL", self._key("invites", member_id), parent_id))
