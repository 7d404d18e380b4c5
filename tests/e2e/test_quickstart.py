"""A newcomer's path: the real ``order-gateway serve`` process, then the README's quickstart
block run by bash exactly as written."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from gateway.instruments import sample_master
from rules.grid import default_grid, protect
from rules.types import Side

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no quickstart block"
    return match.group(1)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    gw_port, paper_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER_PORT": str(gw_port),
        "GATEWAY_STORE_URL": f"sqlite:///{tmp_path}/quickstart.db",
        "GATEWAY_ADMIN_TOKEN": "dev-admin-token",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--config",
        str(ROOT / "deploy/gateway.dev.toml"),
        "serve",
        "--paper-port",
        str(paper_port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    gw = f"http://127.0.0.1:{gw_port}"
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(100):
                try:
                    async with client.get(f"{gw}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the gateway did not become ready")
        yield gw, f"http://127.0.0.1:{paper_port}"
    finally:
        process.terminate()
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert b"draining" in stderr


async def test_the_readme_quickstart_places_a_market_order_that_arrives_as_limit(
    served: tuple[str, str],
) -> None:
    gw, paper = served
    script = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        quickstart_block(),
        env={**os.environ, "GW": gw, "PAPER": paper, "GATEWAY_ADMIN_TOKEN": "dev-admin-token"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await script.communicate()
    output = out.decode()
    assert script.returncode == 0, err.decode() + output
    headers = dict(re.findall(r"(?im)^(x-gateway-[a-z-]+): (.+?)\r?$", output))
    assert headers["X-Gateway-Order-Type"] == "LIMIT"
    # the paper broker's prices move, so the expected limit comes from the LTP the gateway used
    ltp = Decimal(headers["X-Gateway-LTP"])
    reliance = sample_master().get("NSE_EQ|INE002A01018")
    assert reliance is not None
    expected = protect(default_grid(), reliance, Side.BUY, ltp).limit_price
    assert Decimal(headers["X-Gateway-Limit-Price"]) == expected
    assert "'order_type': 'LIMIT'" in output
    assert f"'price': {float(expected)}" in output
