"""A real gateway and a real browser for the console's tests, one of each per module.

The gateway is ``create_app`` with the paper broker, both on loopback, with a FakeClock (the
weekly IP-change period is crossed by moving it, never by sleeping).  The browser is Debian's
``chromium`` driven by Playwright; it is required, never skipped: ``.ci/run`` installs it.
The browser reaches the gateway through a relay whose connections come from 127.0.0.5, so the
console is "a laptop" that is not the strategy's registered IP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.paper.app import create_paper_app

from ..harness import ADMIN_TOKEN, Harness

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP_IP = "127.0.0.5"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def relay(target_port: int, source_ip: str) -> AsyncIterator[int]:
    """A loopback TCP relay to the gateway whose upstream connections come from ``source_ip``:
    what a browser on another machine looks like to the gateway."""
    tasks: set[asyncio.Future[tuple[None, None]]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", target_port, local_addr=(source_ip, 0)
        )
        both = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        tasks.add(both)
        both.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await server.wait_closed()


@dataclass
class Stack:
    gw: Harness
    browser: Browser
    console_url: str  # through the relay: the gateway sees 127.0.0.5

    async def page(self, name: str) -> tuple[Page, list[str]]:
        """A fresh browser context (its own sessionStorage) on the console, and the page errors
        and console errors (a CSP violation is one) it reports, for the test to check."""
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"{name}: {exc}"))

        def logged(msg: ConsoleMessage) -> None:
            url = str(msg.location.get("url", ""))
            # The gateway's 4xx answers to the API are the refusals a test provokes; anything
            # else (a CSP violation, a missing file, a script error) is a problem.
            refusal = "status of 4" in msg.text and "/console/" not in url
            if msg.type == "error" and not refusal:
                problems.append(f"{name}: {msg.text} {url}")

        page.on("console", logged)
        await page.goto(self.console_url)
        return page, problems


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    return CHROMIUM


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    clock = FakeClock()
    tmp = tmp_path_factory.mktemp("console")
    paper = TestServer(create_paper_app(move_interval_s=0, seed=7), host="127.0.0.1")
    await paper.start_server()
    base = str(paper.make_url("")).rstrip("/")
    config = load_config(
        None,
        {
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_STORE_URL": f"sqlite:///{tmp}/gateway.db",
            "GATEWAY_UPSTREAM_UPSTOX": base,
            "GATEWAY_UPSTREAM_KOTAK": base,
            "GATEWAY_UPSTREAM_PARADEX": base,
        },
    )
    gateway = TestServer(create_app(config, clock=clock), host="127.0.0.1")
    await gateway.start_server()
    gw = Harness(gateway, paper, clock)
    ARTIFACTS.mkdir(exist_ok=True)
    assert gateway.port is not None
    async with relay(gateway.port, LAPTOP_IP) as port, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield Stack(gw, browser, f"http://127.0.0.1:{port}/console/")
        finally:
            await browser.close()
            await gw.close()
            await gateway.close()
            await paper.close()
