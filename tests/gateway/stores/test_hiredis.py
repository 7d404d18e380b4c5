"""hiredis is a dependency and the store's connections parse replies with it.

redis-py picks its C reply parser by itself when ``hiredis`` imports (``redis.utils
.HIREDIS_AVAILABLE``); nothing in the gateway asks for it, so this pins that it happens: a
missing or broken wheel would otherwise fall back to the pure-Python parser silently.
"""

from __future__ import annotations

import pytest
from redis._parsers import _AsyncHiredisParser
from redis.utils import HIREDIS_AVAILABLE

from gateway.stores.redis.client import connect

from .conftest import redis_url, unique_prefix


def test_hiredis_is_importable_for_redis_py() -> None:
    assert HIREDIS_AVAILABLE


@pytest.mark.redis
async def test_the_store_client_reads_replies_through_hiredis() -> None:
    client, _ = connect(redis_url(unique_prefix()))
    try:
        assert await client.ping()
        connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            assert isinstance(connection._parser, _AsyncHiredisParser)
        finally:
            await client.connection_pool.release(connection)
    finally:
        await client.aclose()
