"""``order-gateway``: serve, doctor, the paper broker, and admin commands.

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
from typing import Any

from rules.decisions import Refused
from rules.upstream_auth import parse_header_line

from . import accesslog, http_guard
from .cli_args import parser
from .config import Config, ConfigError, load_config
from .serving import ListenError, serve, serve_worker, serve_workers, workers_refusal

WHERE_THE_CLI_LOOKS = (
    "--admin-token, then the GATEWAY_ADMIN_TOKEN environment variable, then admin.token in"
    " the --config file"
)


def _admin_token(args: argparse.Namespace, config: Config) -> tuple[str, str]:
    """The admin token and where it was found, in the order ``WHERE_THE_CLI_LOOKS`` names."""
    if args.admin_token:
        return args.admin_token, "--admin-token"
    if os.environ.get("GATEWAY_ADMIN_TOKEN"):
        return config.admin.token, "GATEWAY_ADMIN_TOKEN"
    if config.admin.token:
        return config.admin.token, f"admin.token in {args.config}"
    where = "no --config was given" if args.config is None else f"{args.config} has none"
    raise SystemExit(
        f"order-gateway: no admin token found ({where}); the CLI looks in {WHERE_THE_CLI_LOOKS}"
    )


def _base_url(config: Config, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    if config.server.tls and config.server.public_url:
        return config.server.public_url  # the name the certificate was issued for
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a wildcard bind
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if config.server.tls else "http"
    return f"{scheme}://{host}:{config.server.port}"


def _admin(
    config: Config, args: argparse.Namespace, method: str, path: str, body: Any = None
) -> Any:
    token, source = _admin_token(args, config)
    base = _base_url(config, args.url)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the operator's own gateway URL
        f"{base}/admin/v1{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        hint = ""
        if exc.code == 401:
            hint = (
                f"\nthe gateway at {base} refused the admin token from {source}; it must equal"
                f" the gateway's admin.token (the CLI looks in {WHERE_THE_CLI_LOOKS})"
            )
        elif exc.code == 403 and "admin API is disabled" in detail:
            hint = f"\nthe gateway at {base} has no admin.token set, so its admin API is off"
        raise SystemExit(f"{method} {path}: {exc.code} {detail}{hint}") from exc
    except urllib.error.URLError as exc:
        raise SystemExit(
            f"cannot reach the gateway at {base}: {exc.reason} (is it running? --url or"
            " server.host/server.port in --config say where it listens)"
        ) from exc
    return json.loads(raw) if raw else None


def _upstream_auth(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Set or clear a stored upstream credential; prints header names, never values."""
    path = f"/accounts/{args.user_id}/upstream-auth/{args.dialect}"
    if args.action == "clear":
        _admin(config, args, "DELETE", path)
        return {"user_id": args.user_id, "dialect": args.dialect, "upstream_auth": None}
    lines = args.headers or [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        headers = dict(parse_header_line(line) for line in lines)
    except Refused as exc:
        raise SystemExit(f"upstream-auth set: {exc.refusal.message}") from exc
    if len(headers) != len(lines):
        raise SystemExit("upstream-auth set: a header name is given twice")
    _admin(config, args, "PUT", path, {"headers": headers})
    return {"user_id": args.user_id, "dialect": args.dialect, "upstream_auth": list(headers)}


def _explain(config: Config, args: argparse.Namespace) -> Any:
    """``explain --audit-id ID``, or a request as a client would send it (SPEC §12)."""
    if args.audit_id is not None:
        if args.method or args.from_ip or args.header:
            raise SystemExit("explain: give either --audit-id or a request, not both")
        return _admin(config, args, "POST", "/explain", {"audit_id": args.audit_id})
    if not (args.method and args.path and args.from_ip):
        raise SystemExit("explain: give --from-ip IP METHOD PATH [BODY], or --audit-id ID")
    headers: dict[str, str] = {}
    for line in args.header:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():  # not echoed: the line may carry a token
            raise SystemExit("explain: a --header must be given as 'Name: value'")
        headers[name.strip()] = value.strip()
    probe = {
        "client_ip": args.from_ip,
        "method": args.method,
        "path": args.path,
        "headers": headers,
        "body": args.body or "",
    }
    return _admin(config, args, "POST", "/explain", probe)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _fail(message: str) -> int:
    print(f"order-gateway: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.url = getattr(args, "url", None)
    args.admin_token = getattr(args, "admin_token", None)
    several = args.command == "serve" and (args.workers > 1 or args.worker_of is not None)
    name = "%(name)s[%(process)d]" if several else "%(name)s"  # which worker said it
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {name}: %(message)s")
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(args.config)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        return _run(args, config, several)
    except (ConfigError, ListenError) as exc:
        return _fail(str(exc))


def _run(args: argparse.Namespace, config: Config, several: bool) -> int:
    command = args.command
    refusal = http_guard.parser_refusal() if command == "serve" else None
    if refusal is not None:
        print(f"order-gateway: {refusal}", file=sys.stderr)
        return 2
    if command == "serve":
        accesslog.configure(config.log.format)
    if command == "serve" and several:
        refusal = workers_refusal(config)
        if args.workers > 1 and args.worker_of is not None:
            refusal = "--workers and --worker-of exclude each other"
        if refusal is not None:
            who = f"--workers {args.workers}" if args.workers > 1 else "worker"
            return _fail(f"serve {who}: {refusal}")
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

        try:
            run_paper_broker(args.host, args.port)
        except OSError as exc:
            return _fail(
                f"cannot start the paper broker on {args.host}:{args.port}: {exc.strerror or exc};"
                " pass --port N with a free port"
            )
    elif command == "accounts" and args.action == "add":
        _print(
            _admin(config, args, "POST", "/accounts", {"user_id": args.user_id, "name": args.name})
        )
    elif command == "accounts" and args.action == "set":
        given = {"algo_id": args.algo_id, "algo_name": args.algo_name}
        body = {name: value or None for name, value in given.items() if value is not None}
        if not body:
            return _fail("accounts set: give --algo-id, --algo-name or both")
        _print(_admin(config, args, "PUT", f"/accounts/{args.user_id}", body))
    elif command == "accounts":
        _print(_admin(config, args, "GET", "/accounts"))
    elif command == "apps":
        _print(_admin(config, args, "POST", f"/accounts/{args.user_id}/apps"))
    elif command == "family":
        body = {"user_id": args.member_id}
        _print(_admin(config, args, "POST", f"/accounts/{args.parent_id}/family/members", body))
    elif command == "ip" and args.action == "show":
        _print(_admin(config, args, "GET", f"/accounts/{args.user_id}/ip"))
    elif command == "ip":
        body = {"primary_ip": args.primary_ip, "secondary_ip": args.secondary_ip}
        _print(_admin(config, args, "PUT", f"/accounts/{args.user_id}/ip", body))
    elif command == "upstream-auth":
        _print(_upstream_auth(config, args))
    elif command == "explain":
        _print(_explain(config, args))
    elif command == "egress":
        body = {"ip": args.ip if args.action == "set" else None}
        _print(_admin(config, args, "PUT", f"/accounts/{args.user_id}/egress", body))
    elif command == "audit":
        query = f"?limit={args.limit}" + (f"&user_id={args.user_id}" if args.user_id else "")
        _print(_admin(config, args, "GET", f"/audit{query}"))
    return 0
