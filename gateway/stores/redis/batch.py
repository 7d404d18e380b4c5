"""Commands issued in the same turn of the event loop go to Redis together, on one connection.

Under load many requests reach the store in one loop iteration (each a task woken by its own
socket).  Sent one by one through redis-py, every command costs a pooled connection, a
``send`` and a ``recv`` and Redis a wake-up of its own, and redis-py's per-command layers
(packing in Python, a retry wrapper, observability hooks) cost the gateway more than the
command costs Redis.  ``Batcher.call`` queues the command and returns a future; at the next
turn of the loop the queue is packed by hiredis into one buffer, written in one send on one
pooled connection, and each reply (or its error) goes to its own future, through redis-py's
response callback for that command as ``execute_command`` would.

For a caller nothing changes: its command has reached Redis and been answered before its
future resolves, in the order the calls were made; an error reply fails that command alone
(``NoScriptError`` for one ``EVALSHA``), and a connection error every command of the batch not
yet answered, each caller mapping it as before.  It is a pipeline, not a transaction: other
clients' commands may run between two of a batch, as they could between two separate calls.
A batch that could not be written is written once more on a fresh connection (a pooled
connection the server had dropped); one that was written is never sent again, so a script
that takes rate slots cannot run twice for one call.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_Queued = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class Batcher:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queue: list[_Queued] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._send_queued)  # after every callback already ready this turn
        self._queue.append((args, future))
        return future

    def _send_queued(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.ensure_future(self._send(batch))
        self._tasks.add(task)  # held until done: a task only weakly referenced may be collected
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Queued]) -> None:
        pool = self._client.connection_pool
        try:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await self._exchange(conn, batch)
            finally:
                await pool.release(conn)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # handed to every caller still waiting, who maps it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)

    async def _exchange(self, conn: AbstractConnection, batch: list[_Queued]) -> None:
        """Write the batch in one send, then read a reply per command, in order.  A reply
        that is an error fails its own command; a broken connection the rest of the batch.
        The connection's ``socket_timeout`` bounds the writing, and the reading of all the
        replies together (one timer per batch, not one per reply)."""
        pieces: list[bytes] = []
        sendable: list[_Queued] = []
        for args, future in batch:
            try:
                pieces.append(hiredis.pack_command(args))
            except TypeError as exc:  # an argument Redis cannot take fails its own call only
                future.set_exception(DataError(f"{args[0]}: {exc}"))
                continue
            sendable.append((args, future))
        if not sendable:
            return
        batch, packed = sendable, b"".join(pieces)
        try:
            await conn.send_packed_command(packed, check_health=False)
        except (RedisConnectionError, RedisTimeoutError):
            # One quick reconnect for a pooled connection the server dropped (the send failed,
            # so nothing is read back from the old one); a failure after sending is not retried.
            await conn.send_packed_command(packed, check_health=False)
        callbacks = self._client.response_callbacks
        try:
            async with asyncio.timeout(conn.socket_timeout):
                for args, future in batch:
                    try:
                        reply = await conn.read_response(timeout=math.inf)
                    except ResponseError as exc:
                        if not future.done():
                            future.set_exception(exc)
                        continue
                    if future.done():  # its caller was cancelled; the command ran all the same
                        continue
                    callback = callbacks.get(args[0])
                    future.set_result(reply if callback is None else callback(reply))
        except TimeoutError:
            raise RedisTimeoutError("Timeout reading from the Redis server") from None
