"""The in-run reference: the least an aiohttp reverse proxy does for an order.

It checks the peer against a set, parses the JSON body, re-encodes it and forwards it through
one ``ClientSession``; no store, no sessions, no rate limit, no conversion. The gateway should
cost no more than this per request (the issue's target is >= 1.0x its req/s).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

import orjson
import uvloop
from aiohttp import ClientSession, web

ALLOWED_PEERS = frozenset({"127.0.0.1", "::1"})
UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", ClientSession)
_JSON = {"Content-Type": "application/json"}


async def forward(request: web.Request) -> web.Response:
    if request.remote not in ALLOWED_PEERS:
        return web.Response(status=403, body=b'{"error":"FORBIDDEN"}', headers=_JSON)
    raw = await request.read()
    try:
        payload = orjson.dumps(orjson.loads(raw)) if raw else None
    except orjson.JSONDecodeError:
        return web.Response(status=400, body=b'{"error":"BAD_JSON"}', headers=_JSON)
    url = request.app[UPSTREAM] + request.path_qs
    async with request.app[SESSION].request(
        request.method, url, data=payload, headers=_JSON
    ) as upstream:
        body = await upstream.read()
        return web.Response(status=upstream.status, body=body, headers=_JSON)


async def _session(app: web.Application) -> AsyncIterator[None]:
    async with ClientSession() as session:
        app[SESSION] = session
        yield


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(host: str, port: int, upstream: str) -> None:
    runner = web.AppRunner(create_app(upstream), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
