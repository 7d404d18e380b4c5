"""Accounts, their API apps, stored upstream credentials and algo ids (the Accounts role)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from ..base import Account, App, Duplicate
from . import codec
from .broker import SET_ACCOUNT_FIELD
from .core import RedisCore
from .scripts import with_prelude

CREATE_ACCOUNT = with_prelude(
    "create_account",
    """
-- ARGV: prefix, user id, parent id or '', field/value pairs...
local account = key('account', ARGV[2])
if redis.call('EXISTS', account) == 1 then return {'exists', {}} end
redis.call('HSET', account, unpack(ARGV, 4))
redis.call('SADD', P .. 'accounts', ARGV[2])
if ARGV[3] ~= '' then redis.call('SADD', key('members', ARGV[3]), ARGV[2]) end
return {'ok', {}}
""",
)

SET_ALGO = with_prelude(
    "set_algo",
    """
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
""",
)


class RedisAccounts(RedisCore):
    async def create_account(self, account: Account) -> Account:
        fields: list[str] = [
            "user_id",
            account.user_id,
            "name",
            account.name,
            "created_at",
            codec.ts(account.created_at),
        ]
        if account.parent_id is not None:
            fields += ["parent_id", account.parent_id]
        if account.algo_id is not None:
            fields += ["algo_id", account.algo_id]
        if account.algo_name is not None:
            fields += ["algo_name", account.algo_name]
        if account.egress_ip is not None:
            fields += ["egress_ip", account.egress_ip]
        if account.broker_user_id is not None:
            fields += ["broker_user_id", account.broker_user_id]
        for dialect, held in account.broker_sessions.items():
            fields += [codec.BROKER + dialect, orjson.dumps(held.to_json()).decode()]
        for dialect, headers in account.upstream_auth.items():
            fields += [codec.AUTH + dialect, orjson.dumps(dict(headers)).decode()]
        reply = await self._run(CREATE_ACCOUNT, account.user_id, account.parent_id or "", *fields)
        if reply[0] == b"exists":
            raise Duplicate(f"account {account.user_id!r} exists")
        return account

    async def get_account(self, user_id: str) -> Account | None:
        found = await self._cmd("HGETALL", self._key("account", user_id))
        return codec.account(found) if found else None

    async def list_accounts(self) -> Sequence[Account]:
        return await self._accounts_in("accounts")

    async def set_upstream_auth(
        self, user_id: str, dialect: str, headers: Mapping[str, str] | None
    ) -> bool:
        value = "" if headers is None else orjson.dumps(dict(headers)).decode()
        reply = await self._run(SET_ACCOUNT_FIELD, user_id, codec.AUTH + dialect, value)
        return bool(reply[0] == b"ok")

    async def set_algo(self, user_id: str, *, algo_id: str | None, algo_name: str | None) -> bool:
        reply = await self._run(SET_ALGO, user_id, algo_id or "", algo_name or "")
        return bool(reply[0] == b"ok")

    async def set_egress(self, user_id: str, ip: str | None) -> bool:
        reply = await self._run(SET_ACCOUNT_FIELD, user_id, "egress_ip", ip or "")
        return bool(reply[0] == b"ok")

    async def create_app(self, app: App) -> App:
        await self._cmd(
            "HSET",
            self._key("app", app.api_key),
            *("api_key", app.api_key, "user_id", app.user_id),
            *("secret_hash", app.secret_hash, "created_at", codec.ts(app.created_at)),
        )
        return app

    async def get_app(self, api_key: str) -> App | None:
        h = await self._cmd("HGETALL", self._key("app", api_key))
        if not h:
            return None
        return App(
            api_key=h[b"api_key"].decode(),
            user_id=h[b"user_id"].decode(),
            secret_hash=h[b"secret_hash"].decode(),
            created_at=codec.at(h.get(b"created_at")),
        )
