"""The kotak sweep: each method of ``neo_api_client.NeoAPI`` called straight at a recording
upstream, then through a real gateway as a trader from its registered IP, and what arrived
compared.

The client is pointed at a base URL and given a session as in ``test_kotak_sdk.py``: its
``configuration.base_url`` and ``edit_token`` / ``edit_sid`` (which ``totp_validate`` would
set), its transport bound to the trader's registered IP.  A public row's client has no
session, as before ``totp_validate``: it sends only the consumer key.  The login host
(``SESSION_PROD_BASE_URL``, where ``whatsmyip`` goes) is pointed at the same base URL, so no
call leaves loopback.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import GatewayFactory
from ..harness import Harness
from .kotak_table import ROWS
from .recorder import Recorder, start_recorder
from .sweep_tables import RELIANCE_LTP, Ctx, Expect, Row

pytestmark = pytest.mark.sdk

KOTAK_RELIANCE = "nse_cm|RELIANCE-EQ"


@dataclass
class Sweep:
    gw: Harness
    recorder: Recorder
    ctx: Ctx
    token: str
    sid: str


def neo_client(base_url: str, ip: str, session: tuple[str, str] | None) -> Any:
    neo_api = importlib.import_module("neo_api_client")
    client = neo_api.NeoAPI(
        consumer_key="sweep-consumer-key",
        environment="prod",
        transport=httpx.HTTPTransport(local_address=ip),
        http2=False,
        timeout=10,
    )
    client.configuration.base_url = base_url
    if session is not None:
        client.configuration.edit_token, client.configuration.edit_sid = session
    return client


@pytest.fixture(autouse=True)
def _sdk_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEO_LOG_FILE_ENABLED", "false")
    monkeypatch.setenv("NEO_SCRIP_CACHE_DIR", str(tmp_path / "scrip-cache"))


@pytest.fixture
async def sweep(aiohttp_server: Any, make_gateway: GatewayFactory) -> Sweep:
    recorder = await start_recorder(aiohttp_server)
    gw = await make_gateway(upstream_kotak=recorder.base_url)
    await gw.push_ltp({KOTAK_RELIANCE: RELIANCE_LTP})
    trader = await gw.trader("127.0.0.2")
    assert recorder.take() == []
    ctx = Ctx(trader.user_id, trader.api_key, trader.api_secret, trader.ip)
    return Sweep(gw, recorder, ctx, trader.token, trader.session_id)


async def call(row: Row, client: Any, ctx: Ctx, tmp_path: Path, run: str) -> Any:
    """One call; a cold scrip cache each time, so ``search_scrip`` fetches the master again."""
    assert row.call is not None
    neo_utility = importlib.import_module("neo_api_client.utils.neo_utility")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEO_SCRIP_CACHE_DIR", str(tmp_path / run))
        patch.setattr(neo_utility, "SESSION_PROD_BASE_URL", client.configuration.base_url)
        return await asyncio.to_thread(row.call, client, ctx)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_kotak_sdk_call_through_the_gateway(sweep: Sweep, row: Row, tmp_path: Path) -> None:
    if row.expect is Expect.SKIP:
        pytest.skip(row.reason)
    ip = sweep.ctx.ip
    direct_client = neo_client(
        sweep.recorder.base_url, ip, None if row.public else ("direct-token", "direct-sid")
    )
    through_client = neo_client(sweep.gw.url, ip, None if row.public else (sweep.token, sweep.sid))

    direct = await call(row, direct_client, sweep.ctx, tmp_path, "direct")
    direct_arrived = [a.key() for a in sweep.recorder.take()]
    through = await call(row, through_client, sweep.ctx, tmp_path, "through")
    through_arrived = [a.key() for a in sweep.recorder.take()]

    assert through == direct
    if row.expect is Expect.LOCAL:
        assert direct_arrived == through_arrived == []
        return
    assert direct_arrived
    if row.expect is Expect.CONVERTED:
        assert row.convert is not None
        method, path, query, body = direct_arrived[0]
        direct_arrived = [(method, path, query, row.convert(body))]
    assert through_arrived == direct_arrived
