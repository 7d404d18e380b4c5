"""The ``store`` fixture: every Store implementation, started on fresh state and closed after.

Adding an implementation is one entry in ``STORES``: an async context manager that yields a
started store on empty state (and cleans up after it), plus the marks its tests need, e.g.
``"redis": (redis_store, (pytest.mark.redis,))``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.stores.base import Store
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


STORES: dict[str, tuple[StoreFactory, tuple[pytest.MarkDecorator, ...]]] = {
    "sqlite": (sqlite_store, ()),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in STORES.items()])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    factory, _ = STORES[request.param]
    async with factory(tmp_path) as started:
        yield started
