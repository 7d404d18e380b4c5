"""A newcomer's path: the real ``order-gateway serve`` process, then the README's quickstart
block run by bash exactly as written."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.instruments import sample_master
from rules.grid import default_grid, protect
from rules.types import Side

from ..process import ROOT, clean_env, free_port, start, wait_until_up


def quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no quickstart block"
    return match.group(1)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    gw_port, paper_port = free_port(), free_port()
    env = clean_env(
        GATEWAY_SERVER_PORT=str(gw_port),
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/quickstart.db",
        GATEWAY_ADMIN_TOKEN="dev-admin-token",
    )
    config = str(ROOT / "deploy/gateway.dev.toml")
    process = await start(
        env, "--config", config, "serve", "--paper-port", str(paper_port), cwd=tmp_path
    )
    gw = f"http://127.0.0.1:{gw_port}"
    try:
        await wait_until_up(process, f"{gw}/readyz")
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
