"""Instrument masters kept current (SPEC §14): ``instruments.urls`` are downloaded at start and
every day at ``instruments.refresh_at`` (local time in ``rules.timezone``), gzipped or plain.

A refresh builds a whole new master (the ``instruments.files`` plus every URL) and swaps it in
at once (:meth:`InstrumentMaster.replace_with`); if any download or parse fails, the previous
master stays, ``/readyz`` fails naming the URL, and ``gateway_instrument_refresh_failures_total``
counts it.  A master older than one trading day also fails ``/readyz``
(``rules.masters.master_is_stale``): new option contracts appear every day.

Downloads go by the host's default route (masters are public files, no account's egress).  The
schedule is checked every ``poll_s`` seconds of real time against the injected clock, so a
test moves the clock past ``refresh_at`` and calls :meth:`InstrumentRefresher.tick`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import Counter, Gauge

from rules.masters import master_is_stale, next_refresh
from rules.types import Instrument

from .clock import Clock
from .config import Config
from .instruments import InstrumentMaster, _loader_for, _maybe_gunzip, load_master
from .metrics import Metrics

log = logging.getLogger("gateway.instruments")

MAX_MASTER_BYTES = 512 * 1024 * 1024  # Upstox's complete.json is ~100 MB unzipped


class InstrumentRefresher:
    def __init__(
        self,
        master: InstrumentMaster,
        config: Config,
        clock: Clock,
        metrics: Metrics,
        *,
        poll_s: float = 30.0,
    ) -> None:
        self.master = master
        self.urls = config.instruments.urls
        self.files = config.instruments.files
        self.at = config.instruments.refresh_at
        self.tz = config.rules.timezone
        self.timeout_s = max(config.upstream.timeout_s, 60.0)
        self.clock = clock
        self.poll_s = poll_s
        self.loaded_at: datetime | None = None
        self.failure: str | None = None
        self._stopping = False  # checked as well as cancelling: see gateway/stores/flusher.py
        self.due = clock.now()  # at start
        self.failures = Counter(
            "gateway_instrument_refresh_failures",
            "Instrument master downloads that failed (the previous master was kept)",
            registry=metrics.registry,
        )
        self.loaded = Gauge(
            "gateway_instrument_master_loaded_timestamp_seconds",
            "When the instrument master in use was downloaded (Unix time)",
            registry=metrics.registry,
        )

    async def _download(self, session: aiohttp.ClientSession, url: str) -> list[Instrument]:
        path = PurePosixPath(urlsplit(url).path)
        loader = _loader_for(Path(path.name))
        async with session.get(url) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            data = await resp.content.read(MAX_MASTER_BYTES + 1)
        if len(data) > MAX_MASTER_BYTES:
            raise ValueError(f"larger than {MAX_MASTER_BYTES} bytes")
        return loader(_maybe_gunzip(data))

    async def refresh(self) -> bool:
        """Download every URL and swap the new master in; False (previous kept) on failure."""
        instruments: list[Instrument] = []
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in self.urls:
                try:
                    instruments += await self._download(session, url)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    self.failure = f"{url}: {exc or type(exc).__name__}"
                    self.failures.inc()
                    log.error("instrument master download failed, keeping the previous: %s",
                              self.failure)  # fmt: skip
                    return False
        fresh = load_master(list(self.files)) if self.files else InstrumentMaster()
        self.master.replace_with(InstrumentMaster([*fresh, *instruments]))
        self.failure = None
        self.loaded_at = self.clock.now()
        self.loaded.set(self.loaded_at.timestamp())
        log.info("instrument master refreshed: %d instruments", len(self.master))
        return True

    async def tick(self) -> None:
        """Refresh when the scheduled time has come (at start, then daily at ``refresh_at``)."""
        now = self.clock.now()
        if now < self.due:
            return
        self.due = next_refresh(now, at=self.at, tz=self.tz)
        await self.refresh()

    def problems(self) -> list[str]:
        """What ``/readyz`` reports about the master."""
        if not self.urls:
            return []
        problems = []
        if self.failure is not None:
            problems.append(f"instruments: the last download failed ({self.failure})")
        if self.loaded_at is None:
            problems.append("instruments: no master downloaded yet")
        elif master_is_stale(self.loaded_at, now=self.clock.now(), tz=self.tz):
            problems.append(
                f"instruments: the master is from {self.loaded_at.isoformat()}, older than one"
                " trading day"
            )
        return problems

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.poll_s)
            if not self._stopping:
                await self.tick()

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: the first download before serving, then the daily schedule."""
        if not self.urls:
            yield
            return
        await self.tick()
        task = asyncio.create_task(self._loop())
        yield
        self._stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


REFRESHER = web.AppKey("instrument_refresher", InstrumentRefresher)
