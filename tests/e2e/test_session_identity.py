"""No client credential upstream (SPEC §10): a kotak client's ``Sid`` is its gateway session
id and half of its credential, so the upstream learns the session only by a public id derived
from it, stable per session; neither ``Auth`` nor ``Sid`` travels in any header, the query or
the body of anything sent on the client's behalf (orders, the quote priced for a market order,
reads)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..harness import Harness, Login
from .conftest import KOTAK_RELIANCE, Kotak


def leaked(request: dict[str, Any], login: Login) -> list[str]:
    """Which of the login's secrets appear anywhere in a recorded upstream request."""
    sent = json.dumps(request)  # method, path, query, every header, the parsed body
    return [
        name for name, value in (("Auth", login.token), ("Sid", login.session_id)) if value in sent
    ]


async def test_no_kotak_credential_goes_upstream(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    placed = await kotak.place(trader)  # MKT: priced from a quote fetched upstream
    order_id = placed.data["nOrdNo"]
    modified = await kotak.modify(trader, order_id, pt="L", pr="1400.0")
    cancelled = await kotak.cancel(trader, order_id)
    book = await kotak.orders(trader)

    assert [r.status for r in (placed, modified, cancelled, book)] == [200] * 4
    requests = await gw.upstream_requests()
    paths = [r["path"] for r in requests]
    assert any("/quotes/" in p for p in paths), paths  # the quote fetched for the MKT order
    assert len(requests) == 5
    assert [(r["path"], leaked(r, trader)) for r in requests] == [(p, []) for p in paths]
    public = {r["headers"]["x-gateway-session-id"] for r in requests}
    assert len(public) == 1  # one session, one stable id
    [session] = public
    assert re.fullmatch(r"[0-9a-f]{32}", session) and session != trader.session_id


async def test_each_session_has_its_own_public_id(gw: Harness, kotak: Kotak) -> None:
    first = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    assert (await kotak.place(first)).status == 200
    second = await gw.login(first, ip="127.0.0.2")  # takes the slot
    assert (await kotak.place(second)).status == 200

    sent = [o["headers"]["x-gateway-session-id"] for o in await kotak.upstream_kotak_orders()]

    assert len(set(sent)) == 2
    assert not {first.session_id, second.session_id} & set(sent)


async def test_upstox_sends_the_public_id_too(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    assert (await gw.place(trader, order_type="LIMIT", price=1400)).status == 200
    assert (await gw.request("GET", "/v2/user/profile", headers=trader.bearer)).status == 200

    requests = await gw.upstream_requests()
    assert len(requests) == 2
    assert [leaked(r, trader) for r in requests] == [[], []]
    assert len({r["headers"]["x-gateway-session-id"] for r in requests}) == 1
