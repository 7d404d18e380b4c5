"""The admin side of a real broker behind the gateway (SPEC §14): an account's egress address
(``PUT /admin/v1/accounts/{user_id}/egress`` ``{"ip": "…"}``, ``null`` clears it), the client
code the broker knows it by (``PUT …/broker-user-id``), and which broker sessions it holds.

The egress address is what the broker sees: the local address every upstream connection made
for the account leaves from.  It must be one this host has, or every order of the account
would fail at connect time; so it is checked when set (by binding a socket to it, which asks
the kernel the one question that matters) and again at startup, where an address the host
lost (a detached floating IP) is logged for each account that names it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refused

from ..forwarding import serving_broker_session
from ..services import SERVICES, Services
from ..stores.base import Account, AuditEntry
from ..stores.roles import Accounts
from .common import account_or_404, json_body, json_response

log = logging.getLogger("gateway.egress")


def on_this_host(address: str) -> bool:
    """True when a socket can be bound to ``address`` here, i.e. the host has it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def parse_egress(body: Any) -> str | None:
    """The address to store, normalised; None clears it.  400 for anything else."""
    if not isinstance(body, dict) or set(body) != {"ip"}:
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"ip": "<address>"} or {"ip": null}')
    value = body["ip"]
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.is_unspecified or address.is_multicast:
        raise Refused(Reason.BAD_REQUEST, f"ip must be a unicast IP address, got {value!r}")
    return str(address)


async def put_egress(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    address = parse_egress(await json_body(request))
    if address is not None and not on_this_host(address):
        raise Refused(
            Reason.BAD_REQUEST,
            f"this host has no address {address}: add it to an interface first (the broker"
            " must see the account's orders come from it)",
        )
    if not await services.store.set_egress(account.user_id, address):
        raise Refused(Reason.NOT_FOUND, f"no account {account.user_id!r}")
    services.store.audit(
        AuditEntry.of(
            {
                "at": services.clock.now().isoformat(),
                "user_id": account.user_id,
                "decision": "admin_egress_set" if address else "admin_egress_clear",
                "original": account.egress_ip,
                "rewritten": address,
            }
        )
    )
    return json_response({"user_id": account.user_id, "egress_ip": address})


async def missing_addresses(store: Accounts) -> list[tuple[str, str]]:
    """(user_id, address) for every account whose egress address this host lacks."""
    return [
        (account.user_id, account.egress_ip)
        for account in await store.list_accounts()
        if account.egress_ip is not None and not on_this_host(account.egress_ip)
    ]


async def report_missing(app: web.Application) -> None:
    """Startup: name every configured egress address the host lacks (SPEC §14)."""
    for user_id, address in await missing_addresses(app[SERVICES].store):
        log.error(
            "account %s sends from %s, which this host does not have: its upstream requests"
            " fail (503) until the address is added or the egress is changed",
            user_id,
            address,
        )


async def put_broker_user_id(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    account = await account_or_404(services, request.match_info["user_id"])
    body = await json_body(request)
    value = body.get("broker_user_id", ...) if isinstance(body, dict) and len(body) == 1 else ...
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
        raise Refused(
            Reason.BAD_REQUEST,
            'the body must be {"broker_user_id": "<client code>"} (1 to 64 characters) or null',
        )
    if not await services.store.set_broker_user_id(account.user_id, value):
        raise Refused(Reason.NOT_FOUND, f"no account {account.user_id!r}")
    return json_response({"user_id": account.user_id, "broker_user_id": value})


async def broker_sessions_view(
    services: Services, account: Account, accounts: dict[str, Account]
) -> dict[str, dict[str, str]]:
    """Per dialect, since when the account holds a broker session that still serves (never
    its value)."""
    if not account.broker_sessions:
        return {}
    owner = account.parent_id or account.user_id
    parent = accounts.get(account.parent_id) if account.parent_id else None
    registration = await services.store.get_registration(owner)
    now = services.clock.now()
    view: dict[str, dict[str, str]] = {}
    for dialect in sorted(account.broker_sessions):
        held = serving_broker_session(
            account,
            dialect,
            now=now,
            registration_version=registration.version,
            egress_ip=account.egress_ip or (parent.egress_ip if parent else None),
        )
        if held is not None:
            view[dialect] = {
                "since": held.since.isoformat(),
                "expires_at": held.expires_at.isoformat(),
            }
    return view


def add_admin_routes(admin: web.Application) -> None:
    admin.router.add_put("/accounts/{user_id}/egress", put_egress)
    admin.router.add_put("/accounts/{user_id}/broker-user-id", put_broker_user_id)
    admin.on_startup.append(report_missing)
