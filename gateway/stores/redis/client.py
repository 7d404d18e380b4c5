"""The Redis client a store talks through: one pool, sized and waited on, standalone or Sentinel.

``store.url`` forms (SPEC §11, §13):

- ``redis://[user:password@]host:port/db?prefix=og:`` (``rediss://`` for TLS);
- ``redis+sentinel://[user:password@]host:26379,host2:26379/<master name>/<db>?prefix=og:``:
  the Sentinels are asked for the current primary and asked again after a failover, so the
  gateway follows it; while no primary answers every store call fails (503, nothing sent).

Under load the pool is a queue, not a cliff: a call waits for a free connection (up to
``pool_timeout``, 5 s by default) instead of failing at once as redis-py's default pool does at
its limit.  A connection is busy until the event loop has read its reply, so on a saturated
host the wait for one grows with the loop's backlog even while Redis answers in microseconds
(seen: 1 s was too short for 240 orders in flight per worker on a loaded 2-core machine).  A
Redis that is down still fails fast: connecting times out after ``socket_connect_timeout``.
Query options: ``max_connections`` (default 64), ``pool_timeout``, ``socket_timeout`` and
``socket_connect_timeout`` (1 s each by default), ``prefix``; any other is passed to redis-py
as it is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from ...config_values import sentinel_parts

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_POOL_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "connect"]

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_POOL_TIMEOUT_S = 5.0
_FLOATS = ("socket_timeout", "socket_connect_timeout", "pool_timeout")


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel-managed pool that waits for a free connection like BlockingConnectionPool."""


class _SentinelClient(aioredis.Redis):
    """The primary's client; closing it also closes the connections to the Sentinels."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self.sentinels.sentinels if self.sentinels is not None else ():
            await client.aclose()


def _options(query: str) -> tuple[dict[str, Any], str]:
    options: dict[str, Any] = {}
    prefix = "og:"
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "prefix":
            prefix = value
        elif name in _FLOATS:
            options[name] = float(value)
        elif name == "max_connections":
            options[name] = int(value)
        else:
            options[name] = value
    return options, prefix


def connect(url: str, **overrides: Any) -> tuple[aioredis.Redis, str]:
    """A client for ``store.url`` and the key prefix; ``overrides`` win over the URL's options
    (a test passes ``connection_class``)."""
    parts = urlsplit(url)
    options, prefix = _options(parts.query)
    options.update(overrides)
    options.setdefault("socket_timeout", DEFAULT_TIMEOUT_S)
    options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT_S)
    pool_timeout = options.pop("pool_timeout", DEFAULT_POOL_TIMEOUT_S)
    max_connections = options.pop("max_connections", DEFAULT_MAX_CONNECTIONS)
    # redis-py uses this for connecting only: the store's commands go through batch.py, which
    # writes a batch again once if the write failed and never after it was written.
    options.setdefault("retry", Retry(NoBackoff(), 1))
    if parts.username:
        options.setdefault("username", unquote(parts.username))
    if parts.password:
        options.setdefault("password", unquote(parts.password))
    if parts.scheme == "redis+sentinel":
        return _sentinel_client(url, options, max_connections, pool_timeout), prefix
    pool = BlockingConnectionPool.from_url(
        parts._replace(query="").geturl(),
        max_connections=max_connections,
        timeout=pool_timeout,
        **options,
    )
    return aioredis.Redis.from_pool(pool), prefix


def _sentinel_client(
    url: str, options: dict[str, Any], max_connections: int, pool_timeout: float
) -> aioredis.Redis:
    sentinels, master, db = sentinel_parts(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": options["socket_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
            "single_connection_client": True,
        },
    )
    client: _SentinelClient = sentinel.master_for(
        master,
        redis_class=_SentinelClient,
        connection_pool_class=_BlockingSentinelPool,
        db=db,
        max_connections=max_connections,
        timeout=pool_timeout,
        **options,
    )
    client.sentinels = sentinel
    return client
