"""Serving: listen, drain on SIGINT/SIGTERM, and ``--workers N`` supervision.

With one worker the gateway is one process.  With several (Redis store only) the parent is
worker 0: it listens with SO_REUSEPORT, starts the others as child processes on the same
port, forwards a stop signal to them, drains its own in-flight requests, and exits 0 only when
every worker exited cleanly.  A worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import signal
import ssl

from aiohttp import web

from . import http_guard
from .app import create_app
from .config import Config, ConfigError
from .loops import loop_factory

log = logging.getLogger("order_gateway")


class ListenError(RuntimeError):
    """A listener that cannot start; the message is one line naming the address and the
    setting to change (an operator's first run should not end in a 40-line traceback)."""


def beyond_loopback(host: str) -> bool:
    """Whether ``server.host`` accepts connections from other machines."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a wildcard ("", "0.0.0.0" parse; "" does not) or a host name


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context from ``server.tls_cert``/``tls_key``, or None for plain HTTP."""
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"server.tls_cert {str(server.tls_cert)!r} / server.tls_key {str(server.tls_key)!r}:"
            f" cannot load the certificate and key ({exc})"
        ) from exc
    return context


def _in_use(exc: OSError) -> bool:
    return exc.errno == errno.EADDRINUSE


async def open_listener(
    config: Config, paper_port: int, *, reuse_port: bool = False
) -> web.AppRunner:
    """The app set up and listening on ``server.host:server.port`` (HTTPS when configured)."""
    context = tls_context(config)
    app = create_app(config, paper_port=paper_port)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=10.0,
        **http_guard.parser_settings(config.server.max_header_bytes),
    )
    try:
        await runner.setup()  # starts the embedded paper broker, when there is one
    except OSError as exc:
        if not _in_use(exc):
            raise
        raise ListenError(
            f"cannot start the embedded paper broker on 127.0.0.1:{paper_port}: the address is"
            " in use; pass `serve --paper-port N` with a free port (or configure an [upstream])"
        ) from exc
    host, port = config.server.host, config.server.port
    site = web.TCPSite(
        runner, host, port, backlog=1024, reuse_port=reuse_port or None, ssl_context=context
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if not _in_use(exc):
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        raise ListenError(
            f"cannot listen on {host}:{port}: the address is in use; set server.port (or"
            " GATEWAY_SERVER_PORT) to a free port, or stop what is listening there"
        ) from exc
    scheme = "https" if context is not None else "http"
    log.info("order-gateway listening on %s://%s:%d", scheme, host, port)
    if context is None and beyond_loopback(host):
        log.warning(
            "listening on %s without TLS: bearer tokens cross the network in clear; set"
            " server.tls_cert and server.tls_key, or listen on 127.0.0.1 behind a TLS proxy"
            " (server.trusted_proxies)",
            host,
        )
    return runner


async def _listen(config: Config, paper_port: int, *, reuse_port: bool = False) -> web.AppRunner:
    runner = await open_listener(config, paper_port, reuse_port=reuse_port)
    # Everything built so far (modules, routes, the instrument master, the app) lives as long
    # as the process: move it out of the collector's sight, or every full collection walks it
    # again (211 -> 171 us of CPU per order in one A/B measurement, see benchmarks/README.md).
    gc.collect()
    gc.freeze()
    return runner


def _on_signals(stop: asyncio.Event, received: list[signal.Signals] | None = None) -> None:
    """SIGINT and SIGTERM set ``stop`` (and are recorded in ``received``)."""
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if received is not None:
            received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)


async def _serve(config: Config, paper_port: int) -> None:
    runner = await _listen(config, paper_port)
    stop = asyncio.Event()
    _on_signals(stop)
    await stop.wait()
    log.info("shutting down: draining in-flight requests")
    await runner.cleanup()


def serve(config: Config, *, paper_port: int = 9000) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(config, paper_port))


# How long the parent waits for its workers after forwarding a signal: their own drain
# (shutdown_timeout=10) plus closing the store; then it kills what is left.
WORKER_EXIT_TIMEOUT_S = 15.0


def workers_refusal(config: Config) -> str | None:
    """Why several workers cannot run with this configuration, if they cannot."""
    if not config.store.url.startswith(("redis://", "rediss://")):
        return "one SQLite file belongs to one process; several workers need store.url = redis://…"
    if config.upstream.embedded:
        return (
            "no upstream is configured, so each worker would start its own embedded paper"
            " broker on the same port; set upstream.upstox, upstream.kotak or upstream.paradex"
        )
    return None


async def _serve_worker(config: Config, parent_pid: int) -> None:
    """A child of ``serve --workers N``: serve on the shared port until a signal arrives or
    the parent is gone (a SIGKILLed parent must not leave workers serving on their own)."""
    stop = asyncio.Event()
    _on_signals(stop)  # before listening: a signal during startup stops it cleanly
    runner = await _listen(config, 0, reuse_port=True)

    async def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent_pid:
                log.error("the parent process %d is gone; worker shutting down", parent_pid)
                stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    watcher = asyncio.create_task(watch_parent())
    await stop.wait()
    await watcher
    log.info("worker shutting down: draining in-flight requests")
    await runner.cleanup()


async def _supervise(config: Config, workers: int, child_argv: list[str]) -> int:
    """Worker 0: serve on the shared port, run workers 1..N-1, forward SIGINT/SIGTERM to
    them, drain, and answer 0 only when every worker exited cleanly."""
    runner = await _listen(config, 0, reuse_port=True)
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    _on_signals(stop, received)
    children: list[asyncio.subprocess.Process] = []
    crashed: list[asyncio.subprocess.Process] = []

    async def watch(index: int, child: asyncio.subprocess.Process) -> None:
        code = await child.wait()
        if not stop.is_set():  # not restarted: a crash loop would only hide the cause
            crashed.append(child)
            log.error(
                "worker %d (pid %d) exited unexpectedly with code %d; %d worker(s) still serving",
                index,
                child.pid,
                code,
                1 + sum(c.returncode is None for c in children),
            )

    watchers: list[asyncio.Task[None]] = []
    try:
        for index in range(1, workers):
            if stop.is_set():
                break
            child = await asyncio.create_subprocess_exec(
                *child_argv, stdin=asyncio.subprocess.DEVNULL
            )
            children.append(child)
            watchers.append(asyncio.create_task(watch(index, child)))
            log.info("worker %d started (pid %d)", index, child.pid)
        await stop.wait()
    finally:
        stop.set()  # also on an error: what follows is our shutdown, not a crash
        sig = received[0] if received else signal.SIGTERM
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)
        live = sum(c.returncode is None for c in children)
        log.info("shutting down: draining in-flight requests (and %d worker(s))", live)
        waiting = asyncio.ensure_future(
            asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), WORKER_EXIT_TIMEOUT_S)
        )
        await runner.cleanup()
        try:
            await waiting
        except TimeoutError:
            for child in children:
                if child.returncode is None:
                    log.error("worker pid %d did not exit in time; killing it", child.pid)
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
            await asyncio.gather(*(c.wait() for c in children))
        await asyncio.gather(*watchers)
    # A worker still starting up (its handlers not yet installed) dies of the forwarded signal
    # itself; it was serving nothing, so that is a clean exit too.
    failed = [c for c in children if c in crashed or c.returncode not in (0, -sig)]
    for child in failed:
        log.error("worker pid %d exited with code %s", child.pid, child.returncode)
    return 1 if failed else 0


def serve_workers(config: Config, workers: int, child_argv: list[str]) -> int:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_supervise(config, workers, child_argv))


def serve_worker(config: Config, parent_pid: int) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve_worker(config, parent_pid))
