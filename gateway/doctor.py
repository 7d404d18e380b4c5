"""``order-gateway doctor``: the checklist an operator runs on the host before market open.

Each check answers ✔ or ✘ with what it saw and, on ✘, what to do; the command exits 1 when
any check failed, so it can gate a deploy or a cron job.  It reads, it never writes: the SQLite
file is only opened when it already exists (a doctor run as root must not create the store
with root as its owner), and nothing is sent upstream beyond one ``GET /`` per base URL.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from .config import Config, ConfigError, load_config
from .serving import beyond_loopback, tls_context

# SEBI's framework keys a session to the day; a master older than a day lacks the day's new
# option contracts (SPEC §14: "a master older than one trading day is a readiness failure").
MASTER_MAX_AGE_S = 24 * 3600
# An order's timestamp and the 03:30 logout are judged by the broker's clock; past a couple of
# seconds the host's NTP is broken (the Date header itself has one-second resolution).
CLOCK_MAX_OFFSET_S = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


Wall = Callable[[], float]
Checker = Callable[[Config, Wall], Awaitable[list[Check]]]


def _absent_sqlite(url: str) -> Check | None:
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists():
        return None
    parent = path.parent
    writable = parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    return Check(
        "store",
        writable,
        f"{path} does not exist yet; the gateway creates it in {parent}",
        "" if writable else f"create {parent} writable by the gateway's user",
    )


async def check_store(config: Config, wall: Wall) -> list[Check]:
    from .app import create_store

    url = config.store.url
    if url.startswith("sqlite:///") and (absent := _absent_sqlite(url)) is not None:
        return [absent]
    store = create_store(config)
    try:
        await store.start()
        await store.ping()
    except Exception as exc:  # any failure is the finding; the doctor reports, never raises
        return [Check("store", False, f"{config.store!r}: {exc}", "start it, or fix store.url")]
    finally:
        await store.close()
    return [Check("store", True, f"{config.store!r} answers")]


async def check_admin_token(config: Config, wall: Wall) -> list[Check]:
    if config.admin.token:
        return [Check("admin token", True, "admin.token is set (the admin API and CLI work)")]
    return [
        Check(
            "admin token",
            False,
            "admin.token is empty: the admin API answers 403 and the CLI cannot manage accounts",
            "set GATEWAY_ADMIN_TOKEN (e.g. in /etc/order-gateway/env, mode 0600)",
        )
    ]


async def _probe(name: str, base: str, config: Config, wall: Wall) -> list[Check]:
    parts = urlsplit(base)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    fix = f"check upstream.{name}, DNS and the firewall; the gateway answers 503 until it answers"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), config.upstream.connect_timeout_s
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return [Check(f"upstream {name}", False, f"{base}: TCP connect failed ({reason})", fix)]
    writer.close()
    timeout = aiohttp.ClientTimeout(total=config.upstream.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.get(base + "/", allow_redirects=False) as response,
        ):
            status, date = response.status, response.headers.get("Date")
            received = wall()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [Check(f"upstream {name}", False, f"{base}: HTTP request failed ({exc!r})", fix)]
    checks = [Check(f"upstream {name}", True, f"{base}: TCP and HTTP answer (GET / -> {status})")]
    if date is None:
        checks.append(Check(f"clock vs {name}", True, f"{base} sends no Date header to compare"))
        return checks
    offset = received - parsedate_to_datetime(date).timestamp()
    good = abs(offset) <= CLOCK_MAX_OFFSET_S
    checks.append(
        Check(
            f"clock vs {name}",
            good,
            f"this host's clock is {offset:+.1f} s from {host}'s Date header",
            ""
            if good
            else "enable time sync (timedatectl set-ntp true; chrony or systemd-timesyncd)",
        )
    )
    return checks


async def check_upstreams(config: Config, wall: Wall) -> list[Check]:
    upstream = config.upstream
    if upstream.embedded:
        return [
            Check(
                "upstream",
                True,
                "no [upstream]: orders go to the embedded paper broker (for trying it out)",
            )
        ]
    bases = upstream.every_url  # by config key, the named hosts too (SPEC §14)
    found = await asyncio.gather(*(_probe(name, url, config, wall) for name, url in bases.items()))
    return [check for checks in found for check in checks]


async def check_instruments(config: Config, wall: Wall) -> list[Check]:
    files = config.instruments.files
    if config.instruments.urls and not files:  # SPEC §14: the gateway downloads them itself
        return [
            Check(
                "instrument master",
                True,
                f"{len(config.instruments.urls)} instruments.urls, downloaded at start and daily"
                f" at {config.instruments.refresh_at:%H:%M}",
                "",
            )
        ]
    if not files:
        trading = not config.upstream.embedded
        return [
            Check(
                "instrument master",
                not trading,
                "instruments.files is empty: the shipped sample (a few instruments) is used",
                "download the broker's instrument master daily and list it in instruments.files"
                if trading
                else "",
            )
        ]
    checks = []
    for path in files:
        try:
            age = wall() - path.stat().st_mtime
        except OSError as exc:
            checks.append(
                Check("instrument master", False, f"{path}: {exc.strerror}", "fix the path")
            )
            continue
        fresh = age <= MASTER_MAX_AGE_S
        checks.append(
            Check(
                "instrument master",
                fresh,
                f"{path} is {age / 3600:.1f} h old",
                "" if fresh else "download today's master (new contracts appear daily)",
            )
        )
    return checks


async def check_listener(config: Config, wall: Wall) -> list[Check]:
    server = config.server
    where = f"{server.host}:{server.port}"
    if server.tls:
        try:
            tls_context(config)
        except ConfigError as exc:
            return [Check("listener", False, str(exc), "fix server.tls_cert / server.tls_key")]
        return [Check("listener", True, f"https on {where} ({server.tls_cert})")]
    if beyond_loopback(server.host):
        return [
            Check(
                "listener",
                False,
                f"http on {where} without TLS: bearer tokens would cross the network in clear",
                "set server.tls_cert and server.tls_key, or listen on 127.0.0.1 behind a TLS"
                " proxy listed in server.trusted_proxies (docs/operations.md)",
            )
        ]
    return [Check("listener", True, f"http on {where} (loopback only)")]


async def _egress_addresses(config: Config) -> list[str] | Check:
    """The egress addresses the store holds for accounts (SPEC §14), or why they cannot be read."""
    from .app import create_store

    url = config.store.url
    if url.startswith("sqlite:///") and _absent_sqlite(url) is not None:
        return []
    store = create_store(config)
    try:
        await store.start()
        accounts = await store.list_accounts()
    except Exception as exc:  # reported by the store check too; nothing to add here
        return Check("egress", False, f"cannot read the accounts: {exc}", "see the store check")
    finally:
        await store.close()
    return sorted({a.egress_ip for a in accounts if a.egress_ip})


async def _reach_from(address: str, name: str, base: str, connect_s: float) -> Check:
    parts = urlsplit(base)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(address, 0)), connect_s
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return Check(
            f"egress {address} → {name}",
            False,
            f"{base}: TCP connect from {address} failed ({reason})",
            f"check the route and firewall for {address}, and that the broker allows it",
        )
    writer.close()
    return Check(f"egress {address} → {name}", True, f"{base} answers from {address}")


async def check_egress(config: Config, wall: Wall) -> list[Check]:
    """Each account's egress address is one this host has, and reaches every upstream."""
    from .api.broker import on_this_host

    found = await _egress_addresses(config)
    if isinstance(found, Check):
        return [found]
    if not found:
        return [Check("egress", True, "no account has an egress address: the default route")]
    upstream = config.upstream
    bases = {} if upstream.embedded else upstream.every_url
    checks: list[Check] = []
    for address in found:
        if not on_this_host(address):
            checks.append(
                Check(
                    f"egress {address}",
                    False,
                    f"{address} is an account's egress address but this host does not have it",
                    f"add {address} to an interface, or set the account's egress anew",
                )
            )
            continue
        checks.append(Check(f"egress {address}", True, "this host has it"))
        connect_s = upstream.connect_timeout_s
        checks.extend(
            await asyncio.gather(
                *(_reach_from(address, name, base, connect_s) for name, base in bases.items())
            )
        )
    return checks


# Checks run in this order.
CHECKS: tuple[Checker, ...] = (
    check_store,
    check_admin_token,
    check_upstreams,
    check_egress,
    check_instruments,
    check_listener,
)


async def diagnose(config: Config, wall: Wall = time.time) -> list[Check]:
    found: list[Check] = []
    for checker in CHECKS:
        found.extend(await checker(config, wall))
    return found


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{'✔' if check.ok else '✘'} {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"    → {check.fix}")
    failed = sum(not check.ok for check in checks)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines)


def run_doctor(path: Path | None) -> int:
    """Print the checklist for the configuration at ``path``; 0 when every check passed."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"✘ config: {exc}\n1 check(s) failed")
        return 1
    checks = [Check("config", True, f"{path or 'defaults'} loads")]
    checks.extend(asyncio.run(diagnose(config)))
    print(render(checks))
    return 0 if all(check.ok for check in checks) else 1
