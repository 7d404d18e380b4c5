"""The Redis client under the store: a pool that queues, and Sentinel URLs (SPEC §11)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import ConfigError, load_config
from gateway.config_values import sentinel_parts
from gateway.stores.redis import RedisStore
from gateway.stores.redis.client import connect

from .conftest import delete_prefix, redis_url, unique_prefix


@pytest.mark.redis
async def test_callers_beyond_the_pool_size_wait_for_a_connection_instead_of_failing() -> None:
    prefix = unique_prefix()
    store = RedisStore.from_url(redis_url(prefix) + "&max_connections=2&pool_timeout=5")
    await store.start()
    try:
        # 60 callers on 2 connections: redis-py's default pool answers "Too many connections"
        # at once past its limit; this one makes them queue.
        await asyncio.gather(*(store.ping() for _ in range(60)))
    finally:
        await store.close()
        await delete_prefix(prefix)


@pytest.mark.redis
async def test_the_pool_size_and_wait_come_from_the_url() -> None:
    client, prefix = connect(
        "redis://127.0.0.1:6379/15?prefix=p1:&max_connections=7&pool_timeout=3"
    )
    try:
        pool = client.connection_pool
        assert prefix == "p1:"
        assert pool.max_connections == 7
        assert pool.timeout == 3.0  # type: ignore[attr-defined]
        assert pool.connection_kwargs["socket_timeout"] == 1.0  # the default
    finally:
        await client.aclose()


def test_sentinel_url_parts() -> None:
    assert sentinel_parts("redis+sentinel://10.0.0.1:26379,[::1]:26380/gw-master/3?prefix=x:") == (
        [("10.0.0.1", 26379), ("::1", 26380)],
        "gw-master",
        3,
    )
    assert sentinel_parts("redis+sentinel://:pw@s1:26379/m") == ([("s1", 26379)], "m", 0)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///m/0", "no Sentinel host"),
        ("redis+sentinel://s1/m/0", "must be host:port"),
        ("redis+sentinel://s1:26379/", "no master name"),
        ("redis+sentinel://s1:26379/m/x", "not a number"),
    ],
)
def test_a_bad_sentinel_url_fails_at_config_load_naming_it(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, {"GATEWAY_STORE_URL": url})


def test_a_sentinel_url_loads() -> None:
    url = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/m/0?prefix=a:"
    assert load_config(None, {"GATEWAY_STORE_URL": url}).store.url == url
