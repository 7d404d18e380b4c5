"""The Store contract, the Lifecycle role: a started store answers."""

from __future__ import annotations

from gateway.stores.base import Store


async def test_ping_answers_when_started(store: Store) -> None:
    await store.ping()
