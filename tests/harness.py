"""A real gateway on loopback in front of a real paper broker, and clients from chosen IPs.

Clients bind their source address (127.0.0.2, 127.0.0.3, …) so the gateway sees a real TCP
peer: no faked headers.  The paper broker records every request it receives, which is how a
test proves that nothing reached the upstream.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.clock import FakeClock

ADMIN_TOKEN = "test-admin-token"
RELIANCE = "NSE_EQ|INE002A01018"


def market_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "price": 0,
        "tag": "t1",
        "instrument_token": RELIANCE,
        "order_type": "MARKET",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0,
        "is_amo": False,
    }
    order.update(overrides)
    return order


def kotak_market(**overrides: str | None) -> dict[str, str | None]:
    """A place jData as the SDK builds it for ``place_order(..., order_type="MKT")``."""
    order: dict[str, str | None] = {
        "am": "NO",
        "dq": "0",
        "es": "nse_cm",
        "mp": "0",
        "pc": "CNC",
        "pr": "0",
        "pt": "MKT",
        "qt": "1",
        "rt": "DAY",
        "tp": "0",
        "ts": "RELIANCE-EQ",
        "tt": "B",
        "ig": None,
        "os": "NEOTRADEAPI",
    }
    order.update(overrides)
    return order


def form(jdata: Any) -> bytes:
    """``jData=<json.dumps(body)>``, urlencoded as httpx encodes the SDK's form."""
    return urlencode({"jData": json.dumps(jdata)}).encode()


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    data: Any

    @property
    def error_code(self) -> str | None:
        try:
            return str(self.data["errors"][0]["error_code"])
        except (KeyError, IndexError, TypeError):
            return None

    @property
    def message(self) -> str:
        try:
            return str(self.data["errors"][0]["message"])
        except (KeyError, IndexError, TypeError):
            return str(self.data.get("message") or self.data.get("errMsg") or "")


@dataclass
class Login:
    user_id: str
    api_key: str
    api_secret: str
    token: str = ""
    session_id: str = ""
    ip: str = "127.0.0.2"

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Harness:
    gateway: TestServer
    paper: TestServer
    clock: FakeClock
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.gateway.make_url("")).rstrip("/")

    @property
    def paper_url(self) -> str:
        return str(self.paper.make_url("")).rstrip("/")

    def client(self, ip: str = "127.0.0.2") -> aiohttp.ClientSession:
        """A client session whose TCP source address is ``ip``."""
        if ip not in self.sessions:
            family_local = (ip, 0, 0, 0) if ":" in ip else (ip, 0)
            connector = aiohttp.TCPConnector(local_addr=family_local, force_close=True)  # type: ignore[arg-type]
            self.sessions[ip] = aiohttp.ClientSession(connector=connector)
        return self.sessions[ip]

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        ip: str = "127.0.0.2",
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        async with self.client(ip).request(
            method, self.url + path, json=json, data=data, headers=headers
        ) as resp:
            body = await resp.read()
            try:
                parsed = await resp.json(content_type=None)
            except ValueError:
                parsed = None
            return Reply(resp.status, dict(resp.headers), body, parsed)

    async def admin(self, method: str, path: str, json: Any = None) -> Reply:
        return await self.request(
            method,
            "/admin/v1" + path,
            ip="127.0.0.1",
            json=json,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )

    async def account(self, user_id: str | None = None, name: str = "Test") -> Login:
        """A new account with one API app (not logged in)."""
        user_id = user_id or "U" + uuid.uuid4().hex[:8].upper()
        created = await self.admin("POST", "/accounts", {"user_id": user_id, "name": name})
        assert created.status == 201, created.body
        app = await self.admin("POST", f"/accounts/{user_id}/apps")
        assert app.status == 201, app.body
        return Login(user_id, app.data["api_key"], app.data["api_secret"])

    async def login(self, login: Login, ip: str = "127.0.0.2") -> Login:
        reply = await self.request(
            "POST",
            "/gateway/v1/session",
            ip=ip,
            json={"api_key": login.api_key, "api_secret": login.api_secret},
        )
        assert reply.status == 200, reply.body
        data = reply.data["data"]
        return Login(
            login.user_id,
            login.api_key,
            login.api_secret,
            data["access_token"],
            data["session_id"],
            ip,
        )

    async def set_ips(self, login: Login, primary: str, secondary: str | None = None) -> Reply:
        body: dict[str, Any] = {"primary_ip": primary}
        if secondary is not None:
            body["secondary_ip"] = secondary
        return await self.request(
            "PUT", "/v2/user/ip", ip=login.ip, json=body, headers=login.bearer
        )

    async def trader(
        self, primary: str = "127.0.0.2", secondary: str | None = None, *, ip: str | None = None
    ) -> Login:
        """An account with registered IPs and a fresh session from ``ip`` (default: primary)."""
        login = await self.login(await self.account(), ip=ip or primary)
        reply = await self.set_ips(login, primary, secondary)
        assert reply.status == 200, reply.body
        return await self.login(login, ip=ip or primary)

    async def place(
        self, login: Login, *, ip: str | None = None, path: str = "/v2/order/place", **order: Any
    ) -> Reply:
        return await self.request(
            "POST", path, ip=ip or login.ip, json=market_order(**order), headers=login.bearer
        )

    async def push_ltp(self, prices: Mapping[str, Decimal | str | float]) -> None:
        reply = await self.admin("PUT", "/ltp", {k: str(v) for k, v in prices.items()})
        assert reply.status == 204, reply.body

    async def cli(self, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        """Run ``order-gateway --url <this gateway> ARGS`` as a process: (exit code, out, err)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "--url",
            self.url,
            *args,
            env={**os.environ, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def upstream_requests(self) -> list[dict[str, Any]]:
        async with self.client("127.0.0.1").get(self.paper_url + "/paper/requests") as resp:
            return list((await resp.json())["requests"])

    async def upstream_orders(self) -> list[dict[str, Any]]:
        async with self.client("127.0.0.1").get(self.paper_url + "/paper/orders") as resp:
            return list((await resp.json())["orders"])

    async def set_upstream_ltp(self, prices: Mapping[str, str]) -> None:
        async with self.client("127.0.0.1").put(self.paper_url + "/paper/ltp", json=prices) as resp:
            assert resp.status == 204
