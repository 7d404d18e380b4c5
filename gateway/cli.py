"""``order-gateway``: serve, the paper broker, and admin commands.

The CLI only turns flags and files into a :class:`Config` and calls ``serve``; admin commands
talk to a running gateway's admin API (never to its database behind its back, which would
leave the gateway's caches stale).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rules.decisions import Refused
from rules.upstream_auth import parse_header_line

from . import http_guard
from .config import Config, ConfigError, load_config
from .serving import serve, serve_worker, serve_workers, workers_refusal


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
    refusal = http_guard.parser_refusal() if command == "serve" else None
    if refusal is not None:
        print(f"order-gateway: {refusal}", file=sys.stderr)
        return 2
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
