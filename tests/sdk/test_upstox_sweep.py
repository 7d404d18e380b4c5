"""The upstox sweep: each method of ``upstox_client`` called straight at a recording upstream,
then through a real gateway as a trader from its registered IP, and what arrived compared.

The SDK connects from 127.0.0.1 (urllib3 picks the loopback source), so that is the IP the
trader registers.  Its calls are synchronous and run in a worker thread while the gateway and
the recorder serve on the test's event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
import upstox_client
from upstox_client.rest import ApiException

from ..conftest import GatewayFactory
from ..harness import Harness
from .recorder import Recorder, start_recorder
from .sweep_tables import RELIANCE_LTP, Ctx, Expect, Row
from .upstox_table import RELIANCE, ROWS

pytestmark = pytest.mark.sdk


@dataclass
class Sweep:
    gw: Harness
    recorder: Recorder
    ctx: Ctx
    token: str


def api_for(row: Row, host: str, token: str) -> Any:
    configuration = upstox_client.Configuration()
    configuration.host = host
    configuration.order_host = host
    configuration.access_token = token
    return getattr(upstox_client, row.owner)(upstox_client.ApiClient(configuration))


@pytest.fixture
async def sweep(aiohttp_server: Any, make_gateway: GatewayFactory) -> Sweep:
    recorder = await start_recorder(aiohttp_server)
    gw = await make_gateway(upstream_upstox=recorder.base_url)
    await gw.push_ltp({RELIANCE: RELIANCE_LTP})
    trader = await gw.trader("127.0.0.1")
    assert recorder.take() == []
    ctx = Ctx(trader.user_id, trader.api_key, trader.api_secret, trader.ip)
    return Sweep(gw, recorder, ctx, trader.token)


async def call(row: Row, api: Any, ctx: Ctx) -> Any:
    assert row.call is not None
    try:
        return await asyncio.to_thread(row.call, api, ctx)
    except ApiException as exc:
        refused = f"{row.name} answered {exc.status}: {exc.body!r}"
    pytest.fail(refused)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_upstox_sdk_call_through_the_gateway(sweep: Sweep, row: Row) -> None:
    if row.expect is Expect.SKIP:
        pytest.skip(row.reason)
    token = "" if row.public else sweep.token
    through_api = api_for(row, sweep.gw.url, token)

    if row.expect is Expect.GATEWAY:
        answer = await call(row, through_api, sweep.ctx)
        assert row.check is not None
        assert row.check(answer, sweep.ctx), answer
        assert sweep.recorder.take() == []
        return

    direct = await call(row, api_for(row, sweep.recorder.base_url, "direct-token"), sweep.ctx)
    direct_arrived = [a.key() for a in sweep.recorder.take()]
    through = await call(row, through_api, sweep.ctx)
    through_arrived = [a.key() for a in sweep.recorder.take()]

    assert through == direct
    if row.expect is Expect.LOCAL:
        assert direct_arrived == through_arrived == []
        return
    assert len(direct_arrived) == 1
    if row.expect is Expect.CONVERTED:
        assert row.convert is not None
        method, path, query, body = direct_arrived[0]
        direct_arrived = [(method, path, query, row.convert(body))]
    assert through_arrived == direct_arrived
