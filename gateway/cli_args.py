"""``order-gateway``'s command line: the commands, their flags and their help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


DESCRIPTION = """\
order-gateway: a compliance proxy in front of broker order APIs. It admits orders only from
registered static IPs over sessions bound to them, turns MARKET orders into LIMIT orders,
paces orders at 10 per second and tags them with the algo id.

Run `order-gateway serve` to start it, `order-gateway doctor` to check a set-up. The other
commands manage a running gateway through its admin API; they need its address (--config or
--url) and its admin token (--admin-token, GATEWAY_ADMIN_TOKEN or admin.token in --config).
"""


def parser() -> argparse.ArgumentParser:
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
