"""A Redis primary, a replica and three Sentinels on loopback, as real processes, for tests.

Ports are free ones; files live in a temporary directory; everything is killed at the end.
Needs ``redis-server`` (which runs as a Sentinel with ``--sentinel``); `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ..process import free_port

MASTER = "og-master"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


@dataclass
class Group:
    primary_port: int
    replica_port: int
    sentinel_ports: list[int]
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    def url(self, prefix: str) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0?prefix={prefix}&socket_timeout=0.5"

    def kill(self, port: int) -> None:
        self.processes[port].kill()

    async def primary_address(self) -> tuple[str, int]:
        """What the Sentinels say the primary is now."""
        client = aioredis.Redis(port=self.sentinel_ports[0])
        try:
            host, port = await client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER
            )
            return host.decode(), int(port)
        finally:
            await client.aclose()


def redis_server() -> str:
    path = shutil.which("redis-server")
    assert path, "redis-server is required (the CI script installs it)"
    return path


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        redis_server(),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _until(check: object, what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        with suppress(Exception):
            if await check():  # type: ignore[operator]
                return
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        await asyncio.sleep(0.1)


async def _info(port: int, section: str) -> dict[str, Any]:
    client = aioredis.Redis(port=port, socket_timeout=1)
    try:
        return dict(await client.info(section))
    finally:
        await client.aclose()


@asynccontextmanager
async def sentinel_group(tmp: Path) -> AsyncIterator[Group]:
    group = Group(free_port(), free_port(), [free_port() for _ in range(3)])
    base = (
        *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"),
        *("--repl-diskless-sync-delay", "0"),  # replicate at once, not after 5 s
    )
    try:
        group.processes[group.primary_port] = await _spawn(
            "--port", str(group.primary_port), *base, "--dir", str(tmp)
        )
        group.processes[group.replica_port] = await _spawn(
            "--port",
            str(group.replica_port),
            *base,
            "--dir",
            str(tmp),
            "--replicaof",
            "127.0.0.1",
            str(group.primary_port),
        )
        for port in group.sentinel_ports:
            conf = tmp / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {group.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            group.processes[port] = await _spawn(str(conf), "--sentinel")

        async def replica_in_sync() -> bool:
            info = await _info(group.replica_port, "replication")
            return bool(info.get("master_link_status") == "up")

        async def sentinels_see_everyone() -> bool:
            for port in group.sentinel_ports:
                master = (await _info(port, "sentinel")).get("master0", {})
                if master.get("slaves") != 1 or master.get("sentinels") != 3:
                    return False
            return True

        await _until(replica_in_sync, "the replica syncs with the primary")
        await _until(sentinels_see_everyone, "every Sentinel sees the replica and the others")
        yield group
    finally:
        for process in group.processes.values():
            if process.returncode is None:
                process.kill()
            await process.wait()
