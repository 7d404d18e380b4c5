"""The real ``order-gateway`` process, for tests of what only a process shows (the CLI, the
README quickstart, SIGTERM draining, several workers)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (bind the wildcard to find one free on every address)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**values: str) -> dict[str, str]:
    """The environment without the developer's own GATEWAY_* settings, plus ``values``.

    The request log is off unless ``values`` turn it on: :func:`start` pipes stderr and most
    tests read it only once the process exits, and a pipe holds 64 KiB (some 250 lines), so
    a burst's access lines would block the gateway on its next write."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "GATEWAY_LOG_ACCESS": "false", **values}


async def start(env: dict[str, str], *args: str, cwd: Path = ROOT) -> asyncio.subprocess.Process:
    """``python -m gateway ARGS`` with stderr captured (the gateway logs there)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_until_up(
    process: asyncio.subprocess.Process, url: str, *, within_s: float = 15.0
) -> None:
    """Poll ``url`` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as client:
        while True:
            assert process.returncode is None, "the gateway exited while starting"
            assert time.monotonic() < deadline, f"{url} did not answer 200 in {within_s} s"
            try:
                async with client.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
