"""The Redis store's batcher: commands issued in one turn of the event loop share one write, each
gets its own reply (or error) as redis-py would have given it, and a batch that was written is
never written again, so a script that takes rate slots cannot run twice for one call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.stores.redis.batch import Batcher
from gateway.stores.redis.client import connect

from .conftest import REDIS_URL, delete_prefix, redis_url, unique_prefix
from .test_redis import Counting

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = unique_prefix()
    yield name
    await delete_prefix(name)


@contextlib.asynccontextmanager
async def batcher(url: str) -> AsyncIterator[Batcher]:
    client, _ = connect(url, connection_class=Counting)
    try:
        yield Batcher(client)
    finally:
        await client.aclose()


async def test_commands_issued_in_one_turn_share_one_write(prefix: str) -> None:
    async with batcher(redis_url(prefix)) as redis:
        await redis.call("PING")  # a warm connection: the handshake is not counted
        before = Counting.writes[0]

        replies = await asyncio.gather(
            *(redis.call("INCRBY", f"{prefix}n", n) for n in range(1, 21)),
            redis.call("GET", f"{prefix}n"),
        )

        assert Counting.writes[0] - before == 1
    assert replies[:20] == [sum(range(1, n + 1)) for n in range(1, 21)]  # in the calls' order
    assert replies[20] == b"210"


async def test_calls_in_different_turns_each_go_out_on_their_own(prefix: str) -> None:
    async with batcher(redis_url(prefix)) as redis:
        await redis.call("PING")
        before = Counting.writes[0]

        for n in range(3):
            await redis.call("SET", f"{prefix}k", n)

        assert Counting.writes[0] - before == 3


async def test_an_error_reply_fails_its_own_command_only(prefix: str) -> None:
    async with batcher(redis_url(prefix)) as redis:
        results = await asyncio.gather(
            redis.call("SET", f"{prefix}k", "text"),
            redis.call("INCR", f"{prefix}k"),
            redis.call("EVALSHA", "0" * 40, 0),
            redis.call("GET", f"{prefix}k"),
            return_exceptions=True,
        )

    assert results[0] is True
    assert isinstance(results[1], ResponseError) and "not an integer" in str(results[1])
    assert isinstance(results[2], NoScriptError)
    assert results[3] == b"text"


async def test_replies_are_what_execute_command_answers(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.hset(f"{prefix}h", mapping={"a": "1", "b": "2"})
    await client.zadd(f"{prefix}z", {"m": 1.5})
    commands = [
        ("HGETALL", f"{prefix}h"),
        ("SET", f"{prefix}s", "v", "EX", 60),
        ("GET", f"{prefix}missing"),
        ("ZRANGEBYSCORE", f"{prefix}z", "-inf", "+inf", "WITHSCORES"),
        ("MGET", f"{prefix}s", f"{prefix}missing"),
        ("PING",),
    ]
    try:
        expected = [await client.execute_command(*c) for c in commands]  # type: ignore[no-untyped-call]
        async with batcher(redis_url(prefix)) as redis:
            got = await asyncio.gather(*(redis.call(*c) for c in commands))
    finally:
        await client.aclose()

    assert got == expected
    assert got[0] == {b"a": b"1", b"b": b"2"}


class Relay:
    """A TCP relay in front of Redis that passes everything until a client writes ``marker``;
    then it forwards that write and passes no reply back: it hangs up on the client
    (``stall=False``) or keeps it waiting (``stall=True``)."""

    def __init__(self, marker: bytes, *, stall: bool = False) -> None:
        self.marker = marker
        self.stall = stall
        target = urlsplit(REDIS_URL)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in self.writers), return_exceptions=True)
        await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]
        back = asyncio.create_task(self._back(up_reader, writer))
        self.tasks.add(back)
        while data := await reader.read(65536):
            up_writer.write(data)
            await up_writer.drain()
            if self.marker in data:
                back.cancel()
                if not self.stall:
                    await asyncio.sleep(0.05)  # Redis has run it
                    writer.close()
                    return

    async def _back(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await up_reader.read(65536):
            writer.write(data)
            await writer.drain()


async def test_a_batch_whose_replies_were_lost_is_not_sent_again(prefix: str) -> None:
    key = f"{prefix}slots"
    async with Relay(marker=key.encode()) as port:
        db = urlsplit(REDIS_URL).path
        async with batcher(f"redis://127.0.0.1:{port}{db}?prefix={prefix}") as redis:
            await redis.call("PING")

            with pytest.raises(RedisConnectionError):
                await redis.call("INCR", key)

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert await client.get(key) == b"1"  # it ran once: redis-py's retry would make it 2
    finally:
        await client.aclose()


async def test_a_stalled_batch_times_out_after_the_socket_timeout(prefix: str) -> None:
    key = f"{prefix}slow"
    async with Relay(marker=key.encode(), stall=True) as port:
        db = urlsplit(REDIS_URL).path
        url = f"redis://127.0.0.1:{port}{db}?prefix={prefix}&socket_timeout=0.2"
        async with batcher(url) as redis:
            await redis.call("PING")
            loop = asyncio.get_running_loop()
            started = loop.time()

            results = await asyncio.gather(
                redis.call("SET", key, 1), redis.call("GET", key), return_exceptions=True
            )

            assert 0.2 <= loop.time() - started < 1.0
            assert all(isinstance(r, RedisTimeoutError) for r in results), results
            # the connection that timed out is not handed out again with a reply pending
            assert await asyncio.wait_for(redis.call("PING"), 1.0) is True


async def test_an_argument_redis_cannot_take_fails_its_own_call_only(prefix: str) -> None:
    async with batcher(redis_url(prefix)) as redis:
        results = await asyncio.gather(
            redis.call("SET", f"{prefix}k", "v"),
            redis.call("SET", f"{prefix}j", None),
            redis.call("GET", f"{prefix}k"),
            return_exceptions=True,
        )

    assert results[0] is True and results[2] == b"v"
    assert isinstance(results[1], DataError)  # a RedisError: the store maps it like any other
