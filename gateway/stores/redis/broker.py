"""Broker sessions the login relay keeps, the client code the broker knows an account by and
its egress address (SPEC §14): part of the Accounts role.  Each is a field of the account's
hash (``broker_user_id``, ``broker_session:<dialect>`` as JSON, ``egress_ip``), written with
an epoch bump: a member's snapshot sees its parent's egress change by the parent epoch.

Relayed logins between their two steps are keys of their own (``login:<view token hash>``),
kept a minute past their expiry and judged expired by the caller's clock."""

from __future__ import annotations

from datetime import datetime

import orjson

from ..base import BrokerSession, LoginStep
from . import codec
from .core import RedisCore
from .scripts import with_prelude

SET_ACCOUNT_FIELD = with_prelude(
    "set_account_field",
    """
-- ARGV: prefix, user id, field, value or '' to remove.  The account's epoch moves in the
-- same step, so every cached snapshot of it is read again.
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
""",
)


_LOGIN_STEP_GRACE_MS = 60_000  # Redis drops a step this long after it expired


class RedisBroker(RedisCore):
    async def set_broker_user_id(self, user_id: str, broker_user_id: str | None) -> bool:
        reply = await self._run(SET_ACCOUNT_FIELD, user_id, "broker_user_id", broker_user_id or "")
        return bool(reply[0] == b"ok")

    async def set_broker_session(
        self, user_id: str, dialect: str, session: BrokerSession | None
    ) -> bool:
        value = "" if session is None else orjson.dumps(session.to_json()).decode()
        reply = await self._run(SET_ACCOUNT_FIELD, user_id, codec.BROKER + dialect, value)
        return bool(reply[0] == b"ok")

    async def hold_login_step(self, key: str, step: LoginStep) -> None:
        value = orjson.dumps([step.user_id, step.egress, codec.ts(step.expires_at)])
        keep_ms = max(0, codec.us(step.expires_at) // 1000 - int(self._wall() * 1000))
        await self._cmd("SET", self._key("login", key), value, "PX", keep_ms + _LOGIN_STEP_GRACE_MS)

    async def login_step(self, key: str, *, now: datetime) -> LoginStep | None:
        value = await self._cmd("GET", self._key("login", key))
        if value is None:
            return None
        user_id, egress, expires_at = orjson.loads(value)
        step = LoginStep(user_id, egress, datetime.fromisoformat(expires_at))
        return step if now < step.expires_at else None

    async def drop_login_step(self, key: str) -> None:
        await self._cmd("DEL", self._key("login", key))
