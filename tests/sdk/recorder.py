"""A recording upstream for the SDK sweep: a real aiohttp server on loopback.

It keeps what arrived (method, path, query, body) and answers a success body in the broker's
shape, just enough for each SDK's deserialiser to read it: upstox ``{"status": "success",
"data": …}`` (its generated models validate ``status`` and take ``data: null``), kotak
``{"stat": "Ok", "stCode": 200, …}``.  Order placements answer order ids, so the gateway learns
the orders as it does from a real broker (SPEC §6).  Kotak's scrip master answers file paths
on this same server, which ``search_scrip`` then downloads itself (not through the gateway:
Kotak serves those files from its CDN).

The paper broker does not fit here: it serves only the order and LTP routes, and the sweep
calls every route of both SDKs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestServer

KOTAK_FILES = "/files/"
# One id for every placement: the direct call and the gateway's call then read the same answer.
ORDER_ID = "REC000001"
# The columns ``search_scrip`` reads from a cash-segment scrip master (services/scrip_search.py).
NSE_CM_CSV = (
    "pSymbol,pSymbolName,pTrdSymbol,pExpiryDate,dStrikePrice;,pOptionType,pExchSeg\n"
    "2885,RELIANCE,RELIANCE-EQ,,,-1,nse_cm\n"
)


@dataclass(frozen=True)
class Arrival:
    """One request as the upstream saw it; ``body`` parsed (JSON, or a form with jData decoded)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any
    # lowercased names; not compared by the sweep (the gateway sends its own identity headers)
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)

    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...], Any]:
        """What the sweep compares.  An empty JSON object is no body: the Upstox SDK sends ``{}``
        on bodiless DELETEs, and a gateway that drops it sends the upstream the same nothing."""
        return (self.method, self.path, self.query, None if self.body == {} else self.body)


def parse_body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode()
    if "json" in content_type:
        return json.loads(text)
    if content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(text, keep_blank_values=True)
        return {k: json.loads(v) if k == "jData" else v for k, v in pairs}
    return text


@dataclass
class Recorder:
    arrivals: list[Arrival] = field(default_factory=list)
    base_url: str = ""

    def take(self) -> list[Arrival]:
        """What arrived since the last take."""
        taken, self.arrivals = self.arrivals, []
        return taken

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.arrivals.append(
            Arrival(
                request.method,
                request.path,
                tuple(parse_qsl(request.query_string, keep_blank_values=True)),
                parse_body(request.content_type, raw),
                {name.lower(): value for name, value in request.headers.items()},
            )
        )
        if request.path.startswith(KOTAK_FILES):
            return web.Response(text=NSE_CM_CSV, content_type="text/csv")
        if request.path.startswith(("/v2/", "/v3/")):
            return web.json_response({"status": "success", "data": self._upstox_data(request)})
        return web.json_response({"stat": "Ok", "stCode": 200, **self._kotak_fields(request)})

    def _upstox_data(self, request: web.Request) -> Any:
        path = request.path
        if path == "/v2/order/place":
            return {"order_id": ORDER_ID}
        if path == "/v3/order/place":
            return {"order_ids": [ORDER_ID]}
        if path == "/v2/order/multi/place":
            return [{"correlation_id": "c1", "order_id": ORDER_ID}]
        if path == "/v3/order/gtt/place":
            return {"gtt_order_ids": [ORDER_ID]}
        return None

    def _kotak_fields(self, request: web.Request) -> dict[str, Any]:
        path = request.path
        if path == "/quick/order/rule/ms/place":
            return {"nOrdNo": ORDER_ID}
        if path in ("/quick/order/vr/modify", "/quick/order/cancel"):
            return {"result": "ok"}
        if path == "/script-details/1.0/masterscrip/file-paths":
            files = [f"{self.base_url}{KOTAK_FILES}nse_cm.csv"]
            return {"data": {"filesPaths": files, "baseFolder": self.base_url + KOTAK_FILES}}
        return {"data": []}


async def start_recorder(aiohttp_server: Any) -> Recorder:
    """A recorder served by pytest-aiohttp's ``aiohttp_server`` fixture."""
    recorder = Recorder()
    server: TestServer = await aiohttp_server(recorder.app())
    recorder.base_url = str(server.make_url("")).rstrip("/")
    return recorder
