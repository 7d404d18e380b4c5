"""The fast upstream: answers every order with a fixed ~150-byte JSON body.

Two implementations serve the same two answers, so the upstream costs close to nothing next to
the candidates it sits behind:
- nginx from Debian's packages (``return 200 '…'``, one worker, no access log) when installed;
- else a raw ``asyncio.Protocol`` HTTP/1.1 server on uvloop (``python -m benchmarks.upstream``).

``GET /v3/market-quote/ltp`` answers Upstox's LTP shape for the one instrument the benchmark
trades, so the gateway's LTP fetches are served too; every other request gets the order answer.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
from pathlib import Path
from typing import cast

import uvloop

from benchmarks import httpwire

INSTRUMENT = "NSE_EQ|INE002A01018"
LTP = 1401.5
LTP_PATH = b"/v3/market-quote/ltp"
ORDER_BODY = (
    b'{"status":"success","data":{"order_id":"250421000123456",'
    b'"order_ids":["250421000123456"]},'
    b'"metadata":{"latency":21,"exchange":"NSE","message":"order placed"}}'
)
LTP_BODY = (
    b'{"status":"success","data":{"NSE_EQ:RELIANCE":'
    b'{"last_price":1401.5,"instrument_token":"NSE_EQ|INE002A01018"}}}'
)


def _response(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
        body
    )
    return head + body


_ORDER_RESPONSE = _response(ORDER_BODY)
_LTP_RESPONSE = _response(LTP_BODY)


class _Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._buf += data
        pos = 0
        out: list[bytes] = []
        close = False
        while not close:
            try:
                msg = httpwire.parse(self._buf, pos)
            except httpwire.FramingError:
                transport.close()
                return
            if msg is None:
                break
            pos = msg.end
            target = msg.start_line.split(b" ", 2)[1] if b" " in msg.start_line else b""
            ltp = msg.start_line.startswith(b"GET ") and target.split(b"?", 1)[0] == LTP_PATH
            out.append(_LTP_RESPONSE if ltp else _ORDER_RESPONSE)
            close = (httpwire.header(msg.head, b"connection") or b"").lower() == b"close"
        if pos:
            del self._buf[:pos]
        if out:
            transport.write(b"".join(out))
        if close:
            transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_Upstream, host, port, backlog=1024)
    async with server:
        await stop.wait()


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"),) if p.exists()), None
    )


def nginx_config(host: str, port: int, prefix: Path) -> str:
    """One worker, no logs, the same two answers as the asyncio upstream."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
{temp}
    server {{
        listen {host}:{port} backlog=1024;
        default_type application/json;
        location = {LTP_PATH.decode()} {{ return 200 '{LTP_BODY.decode()}'; }}
        location / {{ return 200 '{ORDER_BODY.decode()}'; }}
    }}
}}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
