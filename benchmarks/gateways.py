"""The gateway candidates: which store, how many workers, how many accounts; their setup.

A gateway candidate's name says what it runs (``candidates.NAMES``):

- ``gateway``: SQLite, one process, one account (the reference every other gateway is read
  against);
- ``gateway-redis``: the Redis store (a ``redis-server`` of its own, started fresh for each
  measurement, so its CPU is the gateway's alone), one process;
- ``gateway-redis-w2``: the same with ``serve --workers 2`` (SO_REUSEPORT, state shared in Redis);
- ``…-many``: the same gateway with ``--accounts`` accounts (500 by default), each with its own
  static IP, orders spread round-robin over them. The load comes from 127.0.0.1, made a trusted
  proxy, and names each order's client in ``X-Forwarded-For`` (SPEC §3): any connection can
  carry any account's order, so every account is busy in the closed loop too.

Every gateway counts each order against its account's rate window (SPEC §7) with a limit high
enough never to refuse one, so the window is exercised and no answer is a 429; at the default
open-loop rate (500/s over 500 accounts) each account sends 1 order/s, well under its 10/s.
"""

from __future__ import annotations

import http.client
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks import upstream as fast_upstream
from benchmarks.load import ORDER_BODY, ORDER_PATH

HOST = "127.0.0.1"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 (a throwaway gateway on loopback)
USER_ID = "BENCH01"
NAMES = (
    "gateway",
    "gateway-redis",
    "gateway-redis-w2",
    "gateway-many",
    "gateway-redis-many",
    "gateway-redis-w2-many",
)
DEFAULT_ACCOUNTS = 500
_SETUP_THREADS = 8

Headers = tuple[tuple[str, str], ...]


class SetupError(RuntimeError):
    pass


# The plain gateway measured from another commit (``--baseline-ref``) in the same run, so a
# change is judged against what came before it on the same machine state.
BASELINE = "gateway-baseline"


@dataclass(frozen=True)
class GatewaySpec:
    store: str  # "sqlite" or "redis"
    workers: int
    many: bool

    @classmethod
    def of(cls, name: str) -> GatewaySpec | None:
        """The spec a candidate name stands for; None for a name that is not a gateway."""
        if name == BASELINE:  # the SQLite gateway, as committed at --baseline-ref
            name = "gateway"
        if name not in NAMES:
            return None
        return cls(
            store="redis" if "-redis" in name else "sqlite",
            workers=2 if "-w2" in name else 1,
            many=name.endswith("-many"),
        )


def redis_server() -> str | None:
    return shutil.which("redis-server")


def redis_command(binary: str, port: int, workdir: Path) -> list[str]:
    """An empty, memory-only Redis: no snapshots, no AOF, nothing shared with anyone."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]


def config(workdir: Path, port: int, upstream_url: str, store_url: str, many: bool) -> Path:
    path = workdir / "gateway.toml"
    trusted = f'trusted_proxies = ["{HOST}/32"]\n' if many else ""
    path.write_text(
        f"""\
[server]
host = "{HOST}"
port = {port}
{trusted}
[admin]
token = "{ADMIN_TOKEN}"

[store]
url = "{store_url}"

[upstream]
upstox = "{upstream_url}"
kotak = "{upstream_url}"
paradex = "{upstream_url}"
timeout_s = 5.0

[rules]
orders_per_second = 1000000
market_orders = "convert"
ltp_max_age_s = 2.0
"""
    )
    return path


def call(
    port: int,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request from 127.0.0.1 (the client IP the single-account shape registers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10, source_address=(HOST, 0))
    try:
        payload = None if body is None else orjson.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _expect(what: str, answer: tuple[int, dict[str, str], bytes], *statuses: int) -> bytes:
    status, _, body = answer
    if status not in statuses:
        raise SetupError(f"{what}: HTTP {status} {body[:300]!r}")
    return body


def account_ip(n: int) -> str:
    """The static IP of the many-accounts shape's account ``n`` (private, never loopback)."""
    return f"10.77.{n // 250}.{n % 250 + 1}"


def _account(port: int, user_id: str, ip: str, via: dict[str, str]) -> str:
    """Account, app, static ``ip``, and a fresh session from it (SPEC §4, §5): its token.

    ``via`` is added to every request: ``X-Forwarded-For`` when the load comes through a
    trusted proxy (the admin calls then name 127.0.0.1, every other call the account's IP).
    """
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if via:
        admin["X-Forwarded-For"] = HOST
    account = {"user_id": user_id, "name": "Benchmark"}
    _expect("create account", call(port, "POST", "/admin/v1/accounts", account, admin), 201)
    raw = _expect(
        "create app", call(port, "POST", f"/admin/v1/accounts/{user_id}/apps", {}, admin), 201
    )
    app = {k: orjson.loads(raw)[k] for k in ("api_key", "api_secret")}

    def login() -> str:
        body = _expect("login", call(port, "POST", "/gateway/v1/session", app, via), 200, 201)
        token: str = orjson.loads(body)["data"]["access_token"]
        return token

    bearer = {"Authorization": f"Bearer {login()}", **via}
    _expect("register IP", call(port, "PUT", "/v2/user/ip", {"primary_ip": ip}, bearer), 200)
    return login()  # the IP change invalidated the first session


def _push_ltp_and_probe(port: int, auth: Headers, via: dict[str, str]) -> dict[str, str]:
    """Push the LTP, send one order, and check it went upstream converted to LIMIT."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", **via}
    ltp = {fast_upstream.INSTRUMENT: fast_upstream.LTP}
    _expect("push LTP", call(port, "PUT", "/admin/v1/ltp", ltp, admin), 204)
    status, headers, body = call(port, "POST", ORDER_PATH, orjson.loads(ORDER_BODY), dict(auth))
    if status != 200:
        raise SetupError(f"probe order: HTTP {status} {body[:300]!r}")
    facts = {
        "probe_status": str(status),
        "order_type_sent": headers.get("x-gateway-order-type", ""),
        "limit_price": headers.get("x-gateway-limit-price", ""),
        "ltp": headers.get("x-gateway-ltp", ""),
    }
    if facts["order_type_sent"] != "LIMIT":
        raise SetupError(f"probe order was not converted to LIMIT: {headers}")
    return facts


def setup_one(port: int) -> tuple[Headers, dict[str, str]]:
    """One account whose static IP is 127.0.0.1: the headers every order carries, and facts."""
    token = _account(port, USER_ID, HOST, {})
    auth = (("Authorization", f"Bearer {token}"),)
    return auth, {**_push_ltp_and_probe(port, auth, {}), "accounts": "1"}


def setup_many(port: int, accounts: int) -> tuple[tuple[Headers, ...], dict[str, str]]:
    """``accounts`` accounts, each with its own static IP: one header set per account."""

    def one(n: int) -> Headers:
        ip = account_ip(n)
        token = _account(port, f"BENCH{n:05d}", ip, {"X-Forwarded-For": ip})
        return (("Authorization", f"Bearer {token}"), ("X-Forwarded-For", ip))

    with ThreadPoolExecutor(_SETUP_THREADS) as pool:
        identities = tuple(pool.map(one, range(accounts)))
    facts = _push_ltp_and_probe(port, identities[0], {"X-Forwarded-For": HOST})
    return identities, {**facts, "accounts": str(accounts)}
