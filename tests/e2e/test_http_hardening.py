"""HTTP hardening (SPEC §12), on raw sockets: what the request line and head may be.

A real gateway in front of the paper broker; requests are written byte for byte from a socket
bound to the client's address, so nothing a client library would tidy up is tidied up.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from urllib.parse import urlsplit

from ..harness import Harness, Login, market_order
from ..process import ROOT, clean_env

LIMIT = {"order_type": "LIMIT", "price": 1400}


async def exchange(
    gw: Harness, head: bytes, body: bytes = b"", *, ip: str = "127.0.0.2", wait_continue: bool
) -> tuple[bytes, bytes]:
    """Send ``head``; when ``wait_continue``, read what comes back before sending ``body``.

    Answers (what came before the body was sent, everything after)."""
    url = urlsplit(gw.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port, local_addr=(ip, 0))
    try:
        writer.write(head)
        await writer.drain()
        first = b""
        if wait_continue:
            first = await asyncio.wait_for(reader.read(65536), 5)
            if first.startswith(b"HTTP/1.1 100"):
                writer.write(body)
                await writer.drain()
                rest = await asyncio.wait_for(reader.read(65536), 5)
                return first, rest
            return first, b""
        writer.write(body)
        await writer.drain()
        return b"", await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def order_head(trader: Login, body: bytes, extra: str = "", *, version: str = "1.1") -> bytes:
    return (
        f"POST /v2/order/place HTTP/{version}\r\nHost: gateway\r\n"
        f"Authorization: Bearer {trader.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()


def status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def order_body() -> bytes:
    return json.dumps(market_order(**LIMIT)).encode()


async def test_a_head_over_max_header_bytes_gets_431_and_nothing_goes_upstream(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_body()
    # 24 headers of ~800 bytes: each line is short, the head as a whole is ~19 KiB
    padding = "".join(f"X-Pad-{i}: {'a' * 800}\r\n" for i in range(24))
    _, answer = await exchange(gw, order_head(trader, body, padding), body, wait_continue=False)

    status, envelope = status_and_body(answer)
    assert status == 431
    assert envelope["errors"][0]["error_code"] == "UDAPI9431"  # type: ignore[index]
    assert "16384" in envelope["errors"][0]["message"]  # type: ignore[index]
    assert await gw.upstream_requests() == []


async def test_a_head_under_the_limit_is_admitted(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_body()
    padding = "".join(f"X-Pad-{i}: {'a' * 800}\r\n" for i in range(12))  # ~10 KiB
    _, answer = await exchange(gw, order_head(trader, body, padding), body, wait_continue=False)

    assert status_and_body(answer)[0] == 200
    assert len(await gw.upstream_orders()) == 1


async def test_another_http_version_is_refused_not_answered_as_1_1(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_body()
    _, answer = await exchange(
        gw, order_head(trader, body, version="2.0"), body, wait_continue=False
    )

    status, envelope = status_and_body(answer)
    assert status == 505
    assert envelope["errors"][0]["error_code"] == "UDAPI9505"  # type: ignore[index]
    assert await gw.upstream_requests() == []


async def test_http_1_0_is_still_served(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_body()
    _, answer = await exchange(
        gw, order_head(trader, body, version="1.0"), body, wait_continue=False
    )
    assert status_and_body(answer)[0] == 200


async def test_expect_continue_from_an_unregistered_ip_is_refused_before_100_continue(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    stranger = await gw.login(trader, ip="127.0.0.4")
    body = order_body()
    first, rest = await exchange(
        gw,
        order_head(stranger, body, "Expect: 100-continue\r\n"),
        body,
        ip="127.0.0.4",
        wait_continue=True,
    )

    assert not first.startswith(b"HTTP/1.1 100"), first
    assert rest == b""  # the body was never asked for
    status, envelope = status_and_body(first)
    assert status == 403
    assert envelope["errors"][0]["error_code"] == "UDAPI1154"  # type: ignore[index]
    assert await gw.upstream_requests() == []


async def test_expect_continue_with_an_invalid_token_is_refused_before_100_continue(
    gw: Harness,
) -> None:
    body = order_body()
    nobody = Login("X", "k", "s", token="not-a-token")
    first, _ = await exchange(
        gw, order_head(nobody, body, "Expect: 100-continue\r\n"), body, wait_continue=True
    )
    assert status_and_body(first)[0] == 401
    assert await gw.upstream_requests() == []


async def test_expect_continue_from_the_registered_ip_gets_100_then_the_order_goes(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_body()
    first, rest = await exchange(
        gw, order_head(trader, body, "Expect: 100-continue\r\n"), body, wait_continue=True
    )

    assert first.startswith(b"HTTP/1.1 100 Continue"), first
    assert status_and_body(rest)[0] == 200
    assert len(await gw.upstream_orders()) == 1


async def test_the_gateway_refuses_to_start_on_the_pure_python_parser() -> None:
    env = clean_env(AIOHTTP_NO_EXTENSIONS="1", GATEWAY_ADMIN_TOKEN="x")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env={**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"pure-Python HTTP parser" in err
    assert b"request smuggling" in err
