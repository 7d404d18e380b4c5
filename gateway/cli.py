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
from pathlib import Path
from typing import Any

from rules.decisions import Refused
from rules.upstream_auth import parse_header_line

from . import accesslog, http_guard
from .config import Config, ConfigError, load_config
from .serving import ListenError, serve, serve_worker, serve_workers, workers_refusal


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


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


DESCRIPTION = """\
order-gateway: a compliance proxy in front of broker order APIs. It admits orders only from
registered static IPs over sessions bound to them, turns MARKET orders into LIMIT orders,
paces orders at 10 per second and tags them with the algo id.

Run `order-gateway serve` to start it, `order-gateway doctor` to check a set-up. The other
commands manage a running gateway through its admin API; they need its address (--config or
--url) and its admin token (--admin-token, GATEWAY_ADMIN_TOKEN or admin.token in --config).
"""


def _parser() -> argparse.ArgumentParser:
    # --config, --url and --admin-token are accepted before or after the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="the gateway's TOML configuration (GATEWAY_<SECTION>_<KEY> variables override it)",
    )
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the running gateway's base URL for admin commands (default: from --config,"
        " http://127.0.0.1:8080 without one)",
    )
    common.add_argument(
        "--admin-token",
        default=argparse.SUPPRESS,
        metavar="TOKEN",
        help="the admin API token for admin commands; prefer GATEWAY_ADMIN_TOKEN or admin.token"
        " in --config, since a flag is visible to other users in `ps`",
    )
    parser = argparse.ArgumentParser(
        prog="order-gateway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="one of these (`order-gateway COMMAND --help` describes it):",
    )

    def command(group: Any, name: str, help: str) -> argparse.ArgumentParser:
        leaf: argparse.ArgumentParser = group.add_parser(
            name, parents=[common], help=help, description=help
        )
        return leaf

    def group(name: str, help: str) -> Any:
        parent = sub.add_parser(name, parents=[common], help=help, description=help)
        return parent.add_subparsers(
            dest="action", required=True, metavar="ACTION", help="one of these:"
        )

    serve_p = command(sub, "serve", "run the gateway (stop it with Ctrl-C or SIGTERM: it drains)")
    serve_p.add_argument(
        "--paper-port",
        type=int,
        default=9000,
        metavar="PORT",
        help="port of the paper broker started in-process when no [upstream] is configured"
        " (default 9000)",
    )
    serve_p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="processes sharing the port (SO_REUSEPORT); more than 1 needs the Redis store",
    )
    # internal: a worker started by `serve --workers N`, given its parent's pid
    serve_p.add_argument("--worker-of", type=int, default=None, help=argparse.SUPPRESS)
    command(
        sub,
        "doctor",
        "check this host's set-up before market open: config, store, admin token, upstreams,"
        " instrument master, clock, listening address and TLS; exits 1 if anything fails",
    )
    paper = command(sub, "paper-broker", "run the bundled paper broker (a fake broker for tests)")
    paper.add_argument("--host", default="127.0.0.1", help="address to listen on")
    paper.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")

    user_id = "the account's user id, e.g. AB1234"
    accounts = group("accounts", "create, list and configure accounts")
    add = command(accounts, "add", "create an account")
    add.add_argument("user_id", help=user_id)
    add.add_argument("name", help="the account holder's name")
    command(accounts, "list", "list every account")
    acct_set = command(
        accounts,
        "set",
        "set an account's algo id and/or algo name, sent on its orders instead of rules.algo_id"
        " and rules.algo_name; an empty value ('') clears it back to the configured one",
    )
    acct_set.add_argument("user_id", help=user_id)
    acct_set.add_argument("--algo-id", metavar="ID", help="the exchange-approved algo id")
    acct_set.add_argument(
        "--algo-name", metavar="NAME", help="the algo name registered with the broker (Upstox)"
    )

    apps = group("apps", "API apps: the key and secret an account logs in with")
    command(apps, "create", "create an API app; its secret is shown only once").add_argument(
        "user_id", help=user_id
    )

    family = group("family", "families: up to 10 member accounts sharing a parent's static IPs")
    fam_add = command(family, "add", "add an account to a parent's family (no invitation)")
    fam_add.add_argument("parent_id", help="the family parent's user id")
    fam_add.add_argument("member_id", help="the user id of the account to add")

    ip = group("ip", "an account's registered static IPs")
    command(ip, "show", "show an account's registered IPs").add_argument("user_id", help=user_id)
    ip_set = command(
        ip,
        "set",
        "set an account's IPs, skipping the weekly limit; ends its sessions; audited",
    )
    ip_set.add_argument("user_id", help=user_id)
    ip_set.add_argument("primary_ip", help="the primary static IP")
    ip_set.add_argument("secondary_ip", nargs="?", help="the optional secondary static IP")

    auth = group("upstream-auth", "an account's stored broker credential, per dialect")
    auth_set = command(
        auth,
        "set",
        "store an account's broker credential for a dialect; with no HEADER arguments the"
        " 'Name: value' lines are read from stdin (keeps the secret out of ps and history)",
    )
    auth_set.add_argument("user_id", help=user_id)
    auth_set.add_argument("dialect", help="upstox, kotak or paradex")
    auth_set.add_argument(
        "headers", nargs="*", metavar="HEADER", help="a header to send, as 'Name: value'"
    )
    auth_clear = command(auth, "clear", "remove an account's stored credential for a dialect")
    auth_clear.add_argument("user_id", help=user_id)
    auth_clear.add_argument("dialect", help="upstox, kotak or paradex")

    explain = command(
        sub,
        "explain",
        "what the gateway would decide about a request, step by step, without sending it or"
        " using up anything; or why a recorded order decision (--audit-id) went as it did",
    )
    explain.add_argument("--from-ip", metavar="IP", help="the client IP the request comes from")
    explain.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header, e.g. 'Authorization: Bearer …' (repeat for more)",
    )
    explain.add_argument("--audit-id", metavar="ID", help="explain this audit record again")
    explain.add_argument("method", nargs="?", metavar="METHOD", help="e.g. POST")
    explain.add_argument("path", nargs="?", metavar="PATH", help="e.g. /v2/order/place")
    explain.add_argument("body", nargs="?", metavar="BODY", help="the raw request body")
    egress = group(
        "egress", "the local address an account's upstream traffic leaves from (its static IP)"
    )
    egress_set = command(egress, "set", "send the account's upstream traffic from IP")
    egress_set.add_argument("user_id", help=user_id)
    egress_set.add_argument("ip", help="an address this host has, registered at the broker")
    command(egress, "clear", "send it by the host's default route again").add_argument(
        "user_id", help=user_id
    )

    tail = command(group("audit", "the audit log"), "tail", "show the newest audit records")
    tail.add_argument("--user-id", help="only this account's records")
    tail.add_argument("--limit", type=int, default=20, help="how many records (default 20)")
    return parser


def _fail(message: str) -> int:
    print(f"order-gateway: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
