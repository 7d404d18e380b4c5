"""The Redis store's client, its one boundary for Redis errors, its caches and epochs.

Each role module (``accounts``, ``credentials``, …) is a mixin over this core, with its Lua
scripts beside it; ``RedisStore`` is their sum.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from cachetools import LRUCache
from redis.exceptions import NoScriptError, RedisError

from rules.orders import KnownOrder
from rules.sessions import Credential

from ..base import Account, Snapshot, StaleSnapshot, StoreUnavailable
from ..flusher import Flusher
from . import codec
from .batch import Batcher
from .scripts import Script, with_prelude

log = logging.getLogger("order_gateway.store")

_CREDENTIAL_GRACE_MS = 86_400_000  # a credential stays readable (as expired) for a day

AUDIT_KEEP = 100_000


ACCOUNTS_IN = with_prelude(
    "accounts_in",
    """
-- ARGV: prefix, the set of user ids ('accounts' or 'members:<parent>'). The accounts' hashes.
local found = {}
for _, uid in ipairs(redis.call('SMEMBERS', P .. ARGV[2])) do
  found[#found + 1] = redis.call('HGETALL', key('account', uid))
end
return found
""",
)


class RedisCore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "og:",
        cache_size: int = 100_000,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._batcher = Batcher(client)
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

    @contextlib.contextmanager
    def _redis(self) -> Iterator[None]:
        """The one boundary for Redis errors: each becomes ``StoreUnavailable``."""
        if self._closed:
            raise StoreUnavailable("redis store is closed")
        try:
            yield
        except (TimeoutError, RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def _cmd(self, *args: Any) -> Any:
        with self._redis():
            return await self._batcher.call(*args)

    async def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        call = self._batcher.call
        with self._redis():
            try:
                return await call("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server: load it once, then EVALSHA
                await call("SCRIPT", "LOAD", script.source)
                return await call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _run(self, script: Script, *args: Any) -> list[Any]:
        """A prelude script (prefix first); learns the epochs it bumped."""
        reply: list[Any] = await self._eval(script, (), (self._prefix, *args))
        epochs = reply[1] if len(reply) > 1 else []
        for user_id, epoch in zip(epochs[::2], epochs[1::2], strict=True):
            self._learn(user_id.decode(), int(epoch))
        return reply

    def _key(self, kind: str, ident: str = "") -> str:
        return f"{self._prefix}{kind}:{ident}" if ident else f"{self._prefix}{kind}"

    def _learn(self, user_id: str, epoch: int) -> None:
        if epoch > self._epochs.get(user_id, -1):
            self._epochs[user_id] = epoch

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

    async def _accounts_in(self, set_name: str) -> list[Account]:
        hashes = await self._eval(ACCOUNTS_IN, (), (self._prefix, set_name))
        return sorted(
            (codec.account(codec.fields(h)) for h in hashes if h), key=lambda a: a.user_id
        )

    def _credential_args(self, c: Credential, token_hash: str) -> list[Any]:
        expires_ms = codec.us(c.expires_at) // 1000
        # Keep it a day past its expiry (and past now: a credential written already expired is
        # still read back as expired, not as unknown), then Redis drops it.
        keep_until = max(expires_ms, int(self._wall() * 1000)) + _CREDENTIAL_GRACE_MS
        return [
            token_hash,
            c.session_id,
            c.user_id,
            c.kind.value,
            str(c.created_ip),
            codec.ts(c.created_at),
            codec.ts(c.expires_at),
            codec.us(c.expires_at),
            c.slot or "",
            codec.cidrs_json(c.allowed_cidrs),
            keep_until,
        ]

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

    async def _flush(self) -> None:
        """Write the buffered audit records (``audit``)."""
        raise NotImplementedError
