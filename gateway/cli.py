"""``order-gateway``: serve, the paper broker, and admin commands.

The CLI only turns flags and files into a :class:`Config` and calls ``serve``; admin commands
talk to a running gateway's admin API (never to its database behind its back, which would
leave the gateway's caches stale).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from rules.decisions import Refused
from rules.upstream_auth import parse_header_line

from .app import create_app
from .config import Config, ConfigError, load_config
from .loops import loop_factory

log = logging.getLogger("order_gateway")


async def _listen(config: Config, paper_port: int, *, reuse_port: bool = False) -> web.AppRunner:
    app = create_app(config, paper_port=paper_port)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(
        runner, config.server.host, config.server.port, backlog=1024, reuse_port=reuse_port or None
    )
    await site.start()
    log.info("order-gateway listening on http://%s:%d", config.server.host, config.server.port)
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


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


def _admin(config: Config, url: str | None, method: str, path: str, body: Any = None) -> Any:
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a wildcard bind
    base = url or f"http://{host}:{config.server.port}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the operator's own gateway URL
        f"{base}/admin/v1{path}",
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {config.admin.token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(
            f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}"
        ) from exc
    except urllib.error.URLError as exc:
        raise SystemExit(f"cannot reach the gateway at {base}: {exc.reason}") from exc
    return json.loads(raw) if raw else None


def _upstream_auth(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Set or clear a stored upstream credential; prints header names, never values."""
    path = f"/accounts/{args.user_id}/upstream-auth/{args.dialect}"
    if args.action == "clear":
        _admin(config, args.url, "DELETE", path)
        return {"user_id": args.user_id, "dialect": args.dialect, "upstream_auth": None}
    lines = args.headers or [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        headers = dict(parse_header_line(line) for line in lines)
    except Refused as exc:
        raise SystemExit(f"upstream-auth set: {exc.refusal.message}") from exc
    if len(headers) != len(lines):
        raise SystemExit("upstream-auth set: a header name is given twice")
    _admin(config, args.url, "PUT", path, {"headers": headers})
    return {"user_id": args.user_id, "dialect": args.dialect, "upstream_auth": list(headers)}


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _parser() -> argparse.ArgumentParser:
    # --config and --url are accepted before or after the command ("serve --config x.toml").
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="gateway.toml")
    common.add_argument("--url", default=argparse.SUPPRESS, help="the gateway's base URL")
    parser = argparse.ArgumentParser(prog="order-gateway", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(group: Any, name: str, help: str | None = None) -> argparse.ArgumentParser:
        leaf: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help)
        return leaf

    def group(name: str) -> Any:
        return sub.add_parser(name, parents=[common]).add_subparsers(dest="action", required=True)

    serve_p = command(sub, "serve", "run the gateway")
    serve_p.add_argument("--paper-port", type=int, default=9000, help="embedded paper broker port")
    serve_p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); more than 1 needs the Redis store",
    )
    # internal: a worker started by `serve --workers N`, given its parent's pid
    serve_p.add_argument("--worker-of", type=int, default=None, help=argparse.SUPPRESS)
    paper = command(sub, "paper-broker", "run the bundled paper broker")
    paper.add_argument("--host", default="127.0.0.1")
    paper.add_argument("--port", type=int, default=9000)

    accounts = group("accounts")
    add = command(accounts, "add")
    add.add_argument("user_id")
    add.add_argument("name")
    command(accounts, "list")

    command(group("apps"), "create").add_argument("user_id")

    fam_add = command(group("family"), "add")
    fam_add.add_argument("parent_id")
    fam_add.add_argument("member_id")

    ip = group("ip")
    command(ip, "show").add_argument("user_id")
    ip_set = command(ip, "set")
    ip_set.add_argument("user_id")
    ip_set.add_argument("primary_ip")
    ip_set.add_argument("secondary_ip", nargs="?")

    auth = group("upstream-auth")
    auth_set = command(
        auth,
        "set",
        "store an account's broker credential for a dialect; with no HEADER arguments the"
        " 'Name: value' lines are read from stdin (keeps the secret out of ps and history)",
    )
    auth_set.add_argument("user_id")
    auth_set.add_argument("dialect")
    auth_set.add_argument("headers", nargs="*", metavar="HEADER", help="'Name: value'")
    auth_clear = command(auth, "clear")
    auth_clear.add_argument("user_id")
    auth_clear.add_argument("dialect")

    tail = command(group("audit"), "tail")
    tail.add_argument("--user-id")
    tail.add_argument("--limit", type=int, default=20)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.url = getattr(args, "url", None)
    several = args.command == "serve" and (args.workers > 1 or args.worker_of is not None)
    name = "%(name)s[%(process)d]" if several else "%(name)s"  # which worker said it
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {name}: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"order-gateway: {exc}", file=sys.stderr)
        return 2
    command = args.command
    if command == "serve" and several:
        refusal = workers_refusal(config)
        if args.workers > 1 and args.worker_of is not None:
            refusal = "--workers and --worker-of exclude each other"
        if refusal is not None:
            who = f"--workers {args.workers}" if args.workers > 1 else "worker"
            print(f"order-gateway: serve {who}: {refusal}", file=sys.stderr)
            return 2
        if args.worker_of is not None:
            serve_worker(config, args.worker_of)
            return 0
        config_args = [] if args.config is None else ["--config", str(args.config.resolve())]
        child = [sys.executable, "-m", "gateway", *config_args, "serve"]
        return serve_workers(config, args.workers, [*child, "--worker-of", str(os.getpid())])
    if command == "serve":
        serve(config, paper_port=args.paper_port)
    elif command == "paper-broker":
        from .paper.app import run_paper_broker

        run_paper_broker(args.host, args.port)
    elif command == "accounts" and args.action == "add":
        _print(
            _admin(
                config, args.url, "POST", "/accounts", {"user_id": args.user_id, "name": args.name}
            )
        )
    elif command == "accounts":
        _print(_admin(config, args.url, "GET", "/accounts"))
    elif command == "apps":
        _print(_admin(config, args.url, "POST", f"/accounts/{args.user_id}/apps"))
    elif command == "family":
        _print(
            _admin(
                config,
                args.url,
                "POST",
                f"/accounts/{args.parent_id}/family/members",
                {"user_id": args.member_id},
            )
        )
    elif command == "ip" and args.action == "show":
        _print(_admin(config, args.url, "GET", f"/accounts/{args.user_id}/ip"))
    elif command == "ip":
        body = {"primary_ip": args.primary_ip, "secondary_ip": args.secondary_ip}
        _print(_admin(config, args.url, "PUT", f"/accounts/{args.user_id}/ip", body))
    elif command == "upstream-auth":
        _print(_upstream_auth(config, args))
    elif command == "audit":
        query = f"?limit={args.limit}" + (f"&user_id={args.user_id}" if args.user_id else "")
        _print(_admin(config, args.url, "GET", f"/audit{query}"))
    return 0
