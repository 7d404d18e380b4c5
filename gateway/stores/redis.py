"""Redis store: several gateway workers and instances share one state (SPEC §11).

``store.url = "redis://host:port/db?prefix=og:"`` (``rediss://`` for TLS; any other query
option is redis-py's, e.g. ``socket_timeout``).  Needs Redis >= 6.2, standalone or one primary
(the scripts follow references between keys, which a Cluster cannot route), with
``maxmemory-policy noeviction``: an evicted epoch counter could let a stale snapshot pass.

Every read-decide-write is one Lua script (``redis_scripts``), so it is atomic across
instances.  Admission costs one round trip: snapshots (credential, account, effective
registration, slot holders) are cached in-process and proved current by per-account *epoch*
counters.  Every write that invalidates a snapshot (a login taking a slot, a revocation, an IP
change, joining or leaving a family, a token's allowlist, a stored upstream credential)
increments the affected accounts' epochs in the same script.  ``admit`` is one EVALSHA that
compares the snapshot's epochs and, only if they still hold, takes a slot in the account's
rolling-window ZSET; otherwise it raises StaleSnapshot and the caller re-reads.  So once a
PUT /v2/user/ip has answered, no instance admits an order on a session it revoked.
``verify`` (read routes) is one MGET of the epochs.

Durability is the operator's Redis configuration (AOF ``appendfsync everysec`` or ``always``
for idempotency claims and the registry to survive a Redis restart); the CI Redis keeps
nothing on disk.  Every Redis error (connection, timeout, a script error) becomes
StoreUnavailable at one boundary, ``_redis``: order routes then fail closed with 503.

Keys (``P`` is the prefix): ``account:<user>`` hash (``upstream_auth:<dialect>`` fields hold
the stored upstream credentials as JSON), ``accounts`` set, ``members:<parent>``
set, ``app:<api_key>`` hash, ``cred:<token hash>`` hash and ``sid:<session>`` -> token hash
(both expire a day after the credential does), ``sessions:<user>`` set, ``slots:<user>`` hash,
``reg:<user>`` hash, ``ip:<canonical ip>`` set of the accounts holding it, ``epoch:<user>``,
``rate:<user>`` ZSET, ``apitoken:<lookup id>`` hash, ``apitokens:<user>`` ZSET (by creation),
``analytics:<user>`` -> session id, ``order:<id>`` (7 days), ``idem:<[user, key]>`` hash
(1 day), ``audit`` and ``audit-user:<user>`` capped lists, newest first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from cachetools import LRUCache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from rules.family import JoinFacts
from rules.ip import canonical
from rules.orders import KnownOrder
from rules.registry import IpCommit, IpCommitted, Registration
from rules.sessions import Credential
from rules.types import CredentialKind, IPAddress, IPNetwork, Side

from ..config import redis_url_parts
from .base import (
    Account,
    ApiToken,
    App,
    AuditEntry,
    Commit,
    Duplicate,
    IdempotencyRecord,
    Snapshot,
    StaleSnapshot,
    Store,
    StoreUnavailable,
)
from .flusher import BATCH, Flusher
from .redis_scripts import Script, scripts

__all__ = ["RedisStore"]

log = logging.getLogger("order_gateway.store")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_CREDENTIAL_GRACE_MS = 86_400_000  # a credential stays readable (as expired) for a day
_ORDER_TTL_S = 7 * 86_400
_IDEMPOTENCY_TTL_MS = 86_400_000
_AUDIT_KEEP = 100_000
_AUDIT_KEEP_PER_USER = 10_000


def _ts(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def _dt(value: bytes | None) -> datetime | None:
    return datetime.fromisoformat(value.decode()) if value else None


def _at(value: bytes | None) -> datetime:
    parsed = _dt(value)
    if parsed is None:
        raise StoreUnavailable("redis: a stored timestamp is missing")
    return parsed


def _us(value: datetime) -> int:
    """Microseconds since the epoch, exactly (a Lua number holds it without rounding)."""
    return (value - _EPOCH) // _US


def _ip(value: bytes | None) -> IPAddress | None:
    return ipaddress.ip_address(value.decode()) if value else None


def _cidrs_json(nets: Sequence[IPNetwork]) -> bytes:
    return orjson.dumps([str(n) for n in nets])


def _cidrs(value: bytes | None) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n) for n in orjson.loads(value or b"[]"))


def _fields(flat: Sequence[bytes] | Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """A hash as HGETALL answers it: a mapping from redis-py, a flat list from Lua."""
    if isinstance(flat, Mapping):
        return dict(flat)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


_AUTH = "upstream_auth:"  # account hash field prefix: one JSON header object per dialect
_AUTH_BYTES = _AUTH.encode()


def _account(h: Mapping[bytes, bytes]) -> Account:
    return Account(
        user_id=h[b"user_id"].decode(),
        name=h[b"name"].decode(),
        created_at=_at(h.get(b"created_at")),
        parent_id=_text(h.get(b"parent_id")),
        algo_id=_text(h.get(b"algo_id")),
        algo_name=_text(h.get(b"algo_name")),
        upstream_auth={
            name.removeprefix(_AUTH_BYTES).decode(): orjson.loads(value)
            for name, value in h.items()
            if name.startswith(_AUTH_BYTES)
        },
    )


def _credential(h: Mapping[bytes, bytes]) -> Credential:
    return Credential(
        session_id=h[b"session_id"].decode(),
        user_id=h[b"user_id"].decode(),
        kind=CredentialKind(h[b"kind"].decode()),
        created_ip=ipaddress.ip_address(h[b"created_ip"].decode()),
        created_at=_at(h.get(b"created_at")),
        expires_at=_at(h.get(b"expires_at")),
        slot=_text(h.get(b"slot")),
        allowed_cidrs=_cidrs(h.get(b"allowed_cidrs")),
        revoked=h.get(b"revoked") == b"1",
    )


def _registration(h: Mapping[bytes, bytes]) -> Registration:
    if not h:
        return Registration()
    return Registration(
        primary=_ip(h.get(b"primary")),
        secondary=_ip(h.get(b"secondary")),
        primary_updated_at=_dt(h.get(b"primary_updated_at")),
        secondary_updated_at=_dt(h.get(b"secondary_updated_at")),
        changed_at=_dt(h.get(b"changed_at")),
        version=int(h.get(b"version", b"0")),
    )


def _api_token(h: Mapping[bytes, bytes]) -> ApiToken:
    return ApiToken(
        lookup_id=h[b"lookup_id"].decode(),
        token_id=h[b"token_id"].decode(),
        user_id=h[b"user_id"].decode(),
        name=h[b"name"].decode(),
        kind=h[b"kind"].decode(),
        allowed_cidrs=_cidrs(h.get(b"allowed_cidrs")),
        created_at=_at(h.get(b"created_at")),
        expiry_at=_at(h.get(b"expiry_at")),
        last_updated_at=_at(h.get(b"last_updated_at")),
        revoked_at=_dt(h.get(b"revoked_at")),
    )


async def _execute(client: aioredis.Redis, *args: Any) -> Any:
    """The one untyped call: redis-py types its command methods ``Awaitable[X] | X``."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


class RedisStore(Store):
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "og:",
        cache_size: int = 100_000,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._wall = wall  # only for key TTLs, never for a decision
        self._closed = False
        self._snapshots: LRUCache[str, Snapshot] = LRUCache(cache_size)
        # The newest epoch this process has seen per account: a cached snapshot read at an
        # older one is not served (local writes and stale answers both feed it).
        self._epochs: LRUCache[str, int] = LRUCache(cache_size)
        self._orders: LRUCache[str, KnownOrder] = LRUCache(cache_size)
        self._members = (f"{secrets.token_hex(6)}:{n}" for n in itertools.count())
        self._pending_audit: list[tuple[str | None, bytes]] = []
        self._flusher = Flusher(self._flush)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``options`` go to redis-py (a test passes ``connection_class``)."""
        target, prefix = redis_url_parts(url)
        options.setdefault("socket_connect_timeout", 1.0)
        options.setdefault("socket_timeout", 1.0)
        # One quick reconnect for a pooled connection the server dropped; then fail closed.
        options.setdefault("retry", Retry(NoBackoff(), 1))
        client = aioredis.Redis.from_url(target, **options)
        return cls(client, prefix=prefix)

    # the one boundary for redis errors -----------------------------------------------------

    @contextlib.contextmanager
    def _redis(self) -> Iterator[aioredis.Redis]:
        if self._closed:
            raise StoreUnavailable("redis store is closed")
        try:
            yield self._client
        except (TimeoutError, RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def _cmd(self, *args: Any) -> Any:
        with self._redis() as client:
            return await _execute(client, *args)

    async def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self._redis() as client:
            try:
                return await _execute(client, "EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server: load it once, then EVALSHA
                await _execute(client, "SCRIPT", "LOAD", script.source)
                return await _execute(client, "EVALSHA", script.sha, len(keys), *keys, *args)

    async def _run(self, name: str, *args: Any) -> list[Any]:
        """A prelude script (prefix first); learns the epochs it bumped."""
        reply: list[Any] = await self._eval(scripts[name], (), (self._prefix, *args))
        epochs = reply[1] if len(reply) > 1 else []
        for user_id, epoch in zip(epochs[::2], epochs[1::2], strict=True):
            self._learn(user_id.decode(), int(epoch))
        return reply

    def _key(self, kind: str, ident: str = "") -> str:
        return f"{self._prefix}{kind}:{ident}" if ident else f"{self._prefix}{kind}"

    def _learn(self, user_id: str, epoch: int) -> None:
        if epoch > self._epochs.get(user_id, -1):
            self._epochs[user_id] = epoch

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # No ping: a gateway started while Redis is down answers 503 (and /readyz says why)
        # until it is back, rather than not starting.
        self._flusher.start()

    async def close(self) -> None:
        await self._flusher.stop()
        try:
            await self._flush()
        except StoreUnavailable as exc:
            log.error("closing with %d audit records unwritten: %s", len(self._pending_audit), exc)
        finally:
            self._closed = True
            await self._client.aclose()

    async def ping(self) -> None:
        await self._cmd("PING")

    # accounts and apps -----------------------------------------------------------------------

    async def create_account(self, account: Account) -> Account:
        fields: list[str] = [
            "user_id",
            account.user_id,
            "name",
            account.name,
            "created_at",
            _ts(account.created_at),
        ]
        if account.parent_id is not None:
            fields += ["parent_id", account.parent_id]
        if account.algo_id is not None:
            fields += ["algo_id", account.algo_id]
        if account.algo_name is not None:
            fields += ["algo_name", account.algo_name]
        for dialect, headers in account.upstream_auth.items():
            fields += [_AUTH + dialect, orjson.dumps(dict(headers)).decode()]
        reply = await self._run("create_account", account.user_id, account.parent_id or "", *fields)
        if reply[0] == b"exists":
            raise Duplicate(f"account {account.user_id!r} exists")
        return account

    async def get_account(self, user_id: str) -> Account | None:
        found = await self._cmd("HGETALL", self._key("account", user_id))
        return _account(found) if found else None

    async def _accounts_in(self, set_name: str) -> list[Account]:
        hashes = await self._eval(scripts["accounts_in"], (), (self._prefix, set_name))
        return sorted((_account(_fields(h)) for h in hashes if h), key=lambda a: a.user_id)

    async def list_accounts(self) -> Sequence[Account]:
        return await self._accounts_in("accounts")

    async def set_upstream_auth(
        self, user_id: str, dialect: str, headers: Mapping[str, str] | None
    ) -> bool:
        value = "" if headers is None else orjson.dumps(dict(headers)).decode()
        reply = await self._run("set_upstream_auth", user_id, _AUTH + dialect, value)
        return bool(reply[0] == b"ok")

    async def set_algo(self, user_id: str, *, algo_id: str | None, algo_name: str | None) -> bool:
        reply = await self._run("set_algo", user_id, algo_id or "", algo_name or "")
        return bool(reply[0] == b"ok")

    async def create_app(self, app: App) -> App:
        await self._cmd(
            "HSET",
            self._key("app", app.api_key),
            *("api_key", app.api_key, "user_id", app.user_id),
            *("secret_hash", app.secret_hash, "created_at", _ts(app.created_at)),
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
            created_at=_at(h.get(b"created_at")),
        )

    # credentials ---------------------------------------------------------------------------

    def _credential_args(self, c: Credential, token_hash: str) -> list[Any]:
        expires_ms = _us(c.expires_at) // 1000
        # Keep it a day past its expiry (and past now: a credential written already expired is
        # still read back as expired, not as unknown), then Redis drops it.
        keep_until = max(expires_ms, int(self._wall() * 1000)) + _CREDENTIAL_GRACE_MS
        return [
            token_hash,
            c.session_id,
            c.user_id,
            c.kind.value,
            str(c.created_ip),
            _ts(c.created_at),
            _ts(c.expires_at),
            _us(c.expires_at),
            c.slot or "",
            _cidrs_json(c.allowed_cidrs),
            keep_until,
        ]

    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        await self._run("create_login", *self._credential_args(credential, token_hash))
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
        reply = await self._eval(scripts["snapshot"], (), (self._prefix, token_hash))
        if len(reply) < 6:
            self._snapshots.pop(token_hash, None)
            return None
        cred, account, registration, slots, epoch, parent_epoch = reply
        snap = Snapshot(
            credential=_credential(_fields(cred)),
            account=_account(_fields(account)),
            registration=_registration(_fields(registration)),
            slot_holders={k.decode(): v.decode() for k, v in _fields(slots).items()},
            epoch=int(epoch),
            parent_epoch=int(parent_epoch),
        )
        self._learn(snap.account.user_id, snap.epoch)
        if snap.account.parent_id is not None:
            self._learn(snap.account.parent_id, snap.parent_epoch)
        self._snapshots[token_hash] = snap
        return snap

    @staticmethod
    def _owners(snapshot: Snapshot) -> tuple[list[str], list[int]]:
        """The accounts whose epochs prove the snapshot, and the epochs it was read at."""
        account = snapshot.account
        if account.parent_id is None:
            return [account.user_id], [snapshot.epoch]
        return [account.user_id, account.parent_id], [snapshot.epoch, snapshot.parent_epoch]

    def _epoch_keys(self, snapshot: Snapshot) -> tuple[list[str], list[int]]:
        owners, expected = self._owners(snapshot)
        return [self._key("epoch", owner) for owner in owners], expected

    def _check_epochs(self, snapshot: Snapshot, current: Sequence[Any]) -> None:
        owners, expected = self._owners(snapshot)
        now = [int(e or 0) for e in current]
        for owner, epoch in zip(owners, now, strict=True):
            self._learn(owner, epoch)
        if now != expected:
            user_id = snapshot.account.user_id
            raise StaleSnapshot(f"account {user_id} changed since its snapshot was read")

    async def verify(self, snapshot: Snapshot) -> None:
        keys, _ = self._epoch_keys(snapshot)
        self._check_epochs(snapshot, await self._cmd("MGET", *keys))

    async def revoke_credential(self, session_id: str) -> bool:
        reply = await self._run("revoke_credential", session_id)
        return bool(reply[0] == b"ok")

    async def revoke_account(self, user_id: str) -> int:
        reply = await self._run("revoke_account", user_id)
        return int(reply[2])

    # API tokens and the analytics token ------------------------------------------------------

    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        await self._run(
            "create_api_token",
            *self._credential_args(credential, token_hash),
            token.lookup_id,
            token.name,
            token.kind,
            _ts(token.created_at),
            _ts(token.last_updated_at),
        )
        return token

    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        reply = await self._run("api_tokens", user_id, _ts(now))
        # In creation order already; a stable sort by created_at keeps it among equal times.
        tokens = sorted((_api_token(_fields(h)) for h in reply[2] if h), key=lambda t: t.created_at)
        if kind is not None:
            tokens = [t for t in tokens if t.kind == kind]
        if with_invalid:
            return tokens
        return [t for t in tokens if t.live_at(now)]

    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        reply = await self._run("revoke_api_token", user_id, lookup_id, _ts(now))
        return _api_token(_fields(reply[2])) if reply[0] == b"ok" else None

    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        reply = await self._run(
            "replace_api_token_cidrs", user_id, lookup_id, _cidrs_json(cidrs), _ts(now), _us(now)
        )
        return _api_token(_fields(reply[2])) if reply[0] == b"ok" else None

    async def live_analytics_token(self, user_id: str) -> Credential | None:
        found = await self._eval(scripts["live_analytics"], (), (self._prefix, user_id))
        return _credential(_fields(found)) if found else None

    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        reply = await self._run(
            "create_analytics", *self._credential_args(credential, token_hash), retire or ""
        )
        return Commit.DONE if reply[0] == b"ok" else Commit.STALE

    async def revoke_analytics_token(self, user_id: str) -> bool:
        reply = await self._run("revoke_analytics", user_id)
        return bool(reply[0] == b"ok")

    # admission -------------------------------------------------------------------------------

    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        keys, expected = self._epoch_keys(snapshot)
        reply = await self._eval(
            scripts["admit"],
            [self._key("rate", snapshot.account.user_id), *keys],
            [repr(float(now)), repr(float(window)), limit, next(self._members), count, *expected],
        )
        self._check_epochs(snapshot, reply[1])
        if reply[0] == b"limited":
            return float(reply[2])
        return None

    # registry --------------------------------------------------------------------------------

    async def get_registration(self, user_id: str) -> Registration:
        return _registration(await self._cmd("HGETALL", self._key("reg", user_id)))

    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        # Stored canonical, so uniqueness never compares raw strings (SPEC §4).
        primary = "" if new.primary is None else str(canonical(new.primary))
        secondary = "" if new.secondary is None else str(canonical(new.secondary))
        reply = await self._run(
            "apply_ip_change",
            user_id,
            expected_version,
            primary,
            secondary,
            _ts(new.primary_updated_at),
            _ts(new.secondary_updated_at),
            _ts(new.changed_at),
            new.version,
            *sorted(ip for ip in (primary, secondary) if ip),
        )
        if reply[0] == b"concurrent":
            return IpCommitted(IpCommit.VERSION_MOVED)
        if reply[0] == b"taken":
            return IpCommitted(IpCommit.TAKEN, reply[2].decode())
        return IpCommitted(IpCommit.APPLIED)

    # families --------------------------------------------------------------------------------

    async def family_members(self, parent_id: str) -> Sequence[Account]:
        return await self._accounts_in(f"members:{parent_id}")

    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        facts = await self._eval(scripts["join_facts"], (), (self._prefix, parent_id, member_id))
        parent_exists, parent_family, member_exists, member_family, theirs, mine = facts
        return JoinFacts(
            parent_exists=parent_exists == b"1",
            parent_family=_text(parent_family),
            member_exists=member_exists == b"1",
            member_family=_text(member_family),
            member_members=int(theirs),
            members=int(mine),
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
        )
        reply = await self._run("add_family_member", parent_id, member_id, *facts)
        return Commit.DONE if reply[0] == b"ok" else Commit.STALE

    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        reply = await self._run("remove_family_member", parent_id, member_id)
        return bool(reply[0] == b"ok")

    # known orders ----------------------------------------------------------------------------

    async def remember_order(self, order: KnownOrder) -> None:
        # Written at once, not batched: a modify may arrive at another instance next.
        value = orjson.dumps([order.user_id, order.instrument_key, order.side.value])
        await self._cmd("SET", self._key("order", order.order_id), value, "EX", _ORDER_TTL_S)
        self._orders[order.order_id] = order

    async def known_order(self, order_id: str) -> KnownOrder | None:
        if order_id in self._orders:  # an order's owner, instrument and side never change
            return self._orders[order_id]
        value = await self._cmd("GET", self._key("order", order_id))
        if value is None:
            return None
        user_id, instrument_key, side = orjson.loads(value)
        order = KnownOrder(order_id, user_id, instrument_key, Side(side))
        self._orders[order_id] = order
        return order

    # idempotency -----------------------------------------------------------------------------

    def _idem_key(self, record: IdempotencyRecord) -> list[str]:
        return [self._key("idem", orjson.dumps([record.user_id, record.key]).decode())]

    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        found = await self._eval(
            scripts["begin_idempotent"],
            self._idem_key(record),
            [record.body_hash, _IDEMPOTENCY_TTL_MS],
        )
        if not found:
            return None
        h = _fields(found)
        status = h.get(b"status")
        return IdempotencyRecord(
            user_id=record.user_id,
            key=record.key,
            body_hash=h[b"body_hash"].decode(),
            status=None if status is None else int(status),
            headers=orjson.loads(h.get(b"headers", b"{}")),
            body=h.get(b"body", b""),
        )

    async def finish_idempotent(self, record: IdempotencyRecord) -> None:
        await self._eval(
            scripts["finish_idempotent"],
            self._idem_key(record),
            [record.status, orjson.dumps(dict(record.headers)), record.body, _IDEMPOTENCY_TTL_MS],
        )

    async def release_idempotent(self, record: IdempotencyRecord) -> None:
        await self._eval(scripts["release_idempotent"], self._idem_key(record), [])

    # audit -----------------------------------------------------------------------------------

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
        try:
            with self._redis() as client:
                async with client.pipeline(transaction=True) as pipe:
                    everyone = self._key("audit")
                    pipe.lpush(everyone, *(record for _, record in batch))
                    pipe.ltrim(everyone, 0, _AUDIT_KEEP - 1)
                    by_user: dict[str, list[bytes]] = {}
                    for user_id, record in batch:
                        if user_id is not None:
                            by_user.setdefault(user_id, []).append(record)
                    for user_id, records in by_user.items():
                        mine = self._key("audit-user", user_id)
                        pipe.lpush(mine, *records)
                        pipe.ltrim(mine, 0, _AUDIT_KEEP_PER_USER - 1)
                    await pipe.execute()
        except StoreUnavailable:
            # Keep the batch (in order) for the next flush, up to a bound while Redis is down.
            self._pending_audit[:0] = batch
            dropped = len(self._pending_audit) - _AUDIT_KEEP
            if dropped > 0:
                del self._pending_audit[:dropped]
                log.error("redis unavailable: dropped the %d oldest audit records", dropped)
            raise
