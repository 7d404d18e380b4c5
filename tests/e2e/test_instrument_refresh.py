"""Instrument masters kept current (SPEC §14): downloaded at start and daily at
``instruments.refresh_at`` from a loopback server, gzipped; a new contract becomes tradable
after the refresh; a failed download keeps the previous master and fails ``/readyz``; a master
older than one trading day fails ``/readyz``."""

from __future__ import annotations

import gzip
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.instrument_refresh import REFRESHER
from gateway.instruments import UPSTOX_SAMPLE, sample_data, sample_master

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness

IST = ZoneInfo("Asia/Kolkata")
NEW = "NSE_FO|99001"  # listed "today"
NEW_ROW = {
    "segment": "NSE_FO", "name": "NIFTY", "exchange": "NSE", "instrument_type": "CE",
    "instrument_key": NEW, "lot_size": 65, "freeze_quantity": 1820.0, "exchange_token": "99001",
    "tick_size": 5.0, "trading_symbol": "NIFTY 26000 CE 24 NOV 26", "strike_price": 26000.0,
}  # fmt: skip


class Masters:
    """A loopback server for the Upstox master: ``rows`` is what it serves, gzipped."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = list(orjson.loads(sample_data(UPSTOX_SAMPLE)))
        self.status = 200
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        return web.Response(body=gzip.compress(orjson.dumps(self.rows)))


async def start(aiohttp_server: Any, make_gateway: GatewayFactory) -> tuple[Harness, Masters]:
    masters = Masters()
    app = web.Application()
    app.router.add_get("/instruments/complete.json.gz", masters.handle)
    server: TestServer = await aiohttp_server(app)
    url = str(server.make_url("/instruments/complete.json.gz"))
    gw = await make_gateway(instruments_urls=url)
    return gw, masters


async def ready(gw: Harness) -> tuple[int, Any]:
    reply = await gw.request("GET", "/readyz", ip="127.0.0.1")
    return reply.status, reply.data


async def refresh_at(gw: Harness, when: datetime) -> None:
    gw.clock.set(when)
    await gw.gateway.app[REFRESHER].tick()


async def test_a_new_contract_is_tradable_after_the_daily_refresh(
    aiohttp_server: Any, make_gateway: GatewayFactory
) -> None:
    gw, masters = await start(aiohttp_server, make_gateway)
    assert masters.hits == 1  # downloaded at start
    assert (await ready(gw))[0] == 200
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({NEW: "100.00", RELIANCE: "1401.5"})
    before = await gw.place(trader, instrument_token=NEW)
    assert before.status == 422, before.body  # unknown: no tick size to convert on
    assert "not in the instrument master" in before.message

    masters.rows.append(NEW_ROW)
    await refresh_at(gw, datetime(2026, 11, 17, 7, 59, tzinfo=IST))  # not yet: before 08:00
    assert masters.hits == 1
    await refresh_at(gw, datetime(2026, 11, 17, 8, 0, tzinfo=IST))
    assert masters.hits == 2
    trader = await gw.login(trader)  # yesterday's session ended at the daily logout
    await gw.push_ltp({NEW: "100.00", RELIANCE: "1401.5"})
    after = await gw.place(trader, instrument_token=NEW)
    assert after.status == 200, after.body
    [order] = await gw.upstream_orders()
    assert order["body"]["order_type"] == "LIMIT"
    assert (await gw.place(trader)).status == 200  # the rest of the master is still there
    # the gateway refreshed its own copy: the shipped sample other apps share is untouched
    assert NEW not in sample_master()
    assert "nse_cm|RELIANCE-EQ" in sample_master()


async def test_a_failed_download_keeps_the_previous_master_and_fails_readyz(
    aiohttp_server: Any, make_gateway: GatewayFactory
) -> None:
    gw, masters = await start(aiohttp_server, make_gateway)
    masters.rows.append(NEW_ROW)
    await refresh_at(gw, datetime(2026, 11, 17, 8, 0, tzinfo=IST))
    masters.status = 500
    await refresh_at(gw, datetime(2026, 11, 18, 8, 0, tzinfo=IST))
    assert masters.hits == 3

    status, body = await ready(gw)
    assert status == 503
    assert any("last download failed" in p and "HTTP 500" in p for p in body["problems"])
    metrics = (await gw.request("GET", "/metrics", ip="127.0.0.1")).body.decode()
    assert "gateway_instrument_refresh_failures_total 1.0" in metrics
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({NEW: "100.00"})
    assert (await gw.place(trader, instrument_token=NEW)).status == 200  # the previous master

    masters.status = 200
    await refresh_at(gw, datetime(2026, 11, 19, 8, 0, tzinfo=IST))
    assert (await ready(gw))[0] == 200


async def test_a_master_older_than_one_trading_day_fails_readyz(
    aiohttp_server: Any, make_gateway: GatewayFactory
) -> None:
    gw, masters = await start(aiohttp_server, make_gateway)  # loaded Monday 09:30 IST
    masters.status = 404
    gw.clock.set(datetime(2026, 11, 17, 7, 0, tzinfo=IST))  # Tuesday, before the refresh
    status, _ = await ready(gw)
    assert status == 200  # one trading day old: fine
    gw.clock.set(datetime(2026, 11, 18, 7, 0, tzinfo=IST))  # Wednesday: two
    status, body = await ready(gw)
    assert status == 503
    assert any("older than one trading day" in p for p in body["problems"])


async def test_a_corrupt_file_keeps_the_previous_master(
    aiohttp_server: Any, make_gateway: GatewayFactory
) -> None:
    gw, masters = await start(aiohttp_server, make_gateway)
    masters.rows = [{"instrument_key": "broken"}]  # no segment, no tick size
    await refresh_at(gw, datetime(2026, 11, 17, 8, 0, tzinfo=IST))
    status, body = await ready(gw)
    assert status == 503
    assert any("complete.json.gz" in p for p in body["problems"])
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    assert (await gw.place(trader)).status == 200
