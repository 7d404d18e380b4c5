"""A request written byte for byte: header values no client library would send."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp.test_utils import TestServer


async def raw_request(
    server: TestServer,
    method: str,
    target: str,
    headers: Mapping[str, bytes],
    body: bytes = b"",
    *,
    ip: str = "127.0.0.1",
) -> tuple[int, bytes]:
    host, port = server.host, server.port
    assert port is not None
    head = f"{method} {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n".encode()
    for name, value in headers.items():
        head += name.encode() + b": " + value + b"\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port, local_addr=(ip, 0))
    writer.write(head + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
