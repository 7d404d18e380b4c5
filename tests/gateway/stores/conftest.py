"""The ``store`` fixture: every Store implementation, started on fresh state and closed after.

Adding an implementation is one entry in ``STORES``: an async context manager that yields a
started store on empty state (and cleans up after it), plus the marks its tests need, e.g.
``"redis": (redis_store, (pytest.mark.redis,))``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.stores.base import Store
from gateway.stores.redis import RedisStore
from gateway.stores.sqlite import SQLiteStore

StoreFactory = Callable[[Path], contextlib.AbstractAsyncContextManager[Store]]


@contextlib.asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SQLiteStore(str(tmp_path / "gateway.db"))
    await store.start()
    try:
        yield store
    finally:
        await store.close()


# A database of its own, so a developer's gateway on db 0 is never touched; each test also
# gets a prefix of its own, deleted afterwards.
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_url(prefix: str) -> str:
    return f"{REDIS_URL}?prefix={prefix}"


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


async def delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_store(tmp_path: Path) -> AsyncIterator[Store]:
    prefix = unique_prefix()
    store = RedisStore.from_url(redis_url(prefix))
    await store.start()
    try:
        yield store
    finally:
        await store.close()
        await delete_prefix(prefix)


STORES: dict[str, tuple[StoreFactory, tuple[pytest.MarkDecorator, ...]]] = {
    "sqlite": (sqlite_store, ()),
    "redis": (redis_store, (pytest.mark.redis,)),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in STORES.items()])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    factory, _ = STORES[request.param]
    async with factory(tmp_path) as started:
        yield started
