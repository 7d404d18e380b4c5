"""Kotak Neo requests as ``neo_api_client`` sends them: ``Auth``/``Sid`` headers, a form body
``jData=<JSON>`` with every value a string (``services/order.py``, ``rest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ..harness import Harness, Login, Reply, form, kotak_market

PLACE = "/quick/order/rule/ms/place"
MODIFY = "/quick/order/vr/modify"
CANCEL = "/quick/order/cancel"
ORDER_BOOK = "/quick/user/orders"
KOTAK_RELIANCE = "nse_cm|RELIANCE-EQ"


def kotak_headers(login: Login) -> dict[str, str]:
    return {"Auth": login.token, "Sid": login.session_id}


@dataclass
class Kotak:
    gw: Harness

    async def post(self, login: Login, path: str, body: bytes, *, ip: str | None = None) -> Reply:
        headers = {**kotak_headers(login), "Content-Type": "application/x-www-form-urlencoded"}
        return await self.gw.request("POST", path, ip=ip or login.ip, data=body, headers=headers)

    async def place(self, login: Login, *, ip: str | None = None, **jdata: str | None) -> Reply:
        return await self.post(login, PLACE, form(kotak_market(**jdata)), ip=ip)

    async def modify(
        self, login: Login, order_id: str, *, ip: str | None = None, **jdata: str | None
    ) -> Reply:
        body: dict[str, str | None] = {
            "mp": "0",
            "dq": "0",
            "vd": "DAY",
            "pr": "0",
            "pt": "MKT",
            "am": "NO",
            "tp": "0",
            "qt": "2",
            "no": order_id,
            "os": "NEOTRADEAPI",
        }
        body.update(jdata)
        return await self.post(login, MODIFY, form(body), ip=ip)

    async def cancel(self, login: Login, order_id: str, *, ip: str | None = None) -> Reply:
        return await self.post(login, CANCEL, form({"on": order_id, "am": "NO"}), ip=ip)

    async def orders(self, login: Login, *, ip: str | None = None) -> Reply:
        return await self.gw.request(
            "GET", ORDER_BOOK, ip=ip or login.ip, headers=kotak_headers(login)
        )

    async def upstream_kotak_orders(self) -> list[dict[str, Any]]:
        return [o for o in await self.gw.upstream_orders() if o["dialect"] == "kotak"]


@pytest.fixture
def kotak(gw: Harness) -> Kotak:
    return Kotak(gw)
