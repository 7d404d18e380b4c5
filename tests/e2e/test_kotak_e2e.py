"""The kotak dialect end to end: a real gateway on loopback in front of the paper broker.

What Kotak Neo's static-IP rules look like from a client: orders only from a registered IP, over
a session created from that IP (100008 / 1037 bodies byte for byte), one order slot per
registered IP, market orders forwarded as protected limit orders, read routes unaffected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.forwarding import public_session_id
from gateway.instruments import KOTAK_SAMPLE, UPSTOX_SAMPLE, sample_data

from ..conftest import GatewayFactory
from ..harness import Harness, form, kotak_market
from .conftest import (
    CANCEL,
    KOTAK_RELIANCE,
    ORDER_BOOK,
    PLACE,
    Kotak,
    kotak_headers,
)

NOT_REGISTERED = b'{"stCode":100008,"errMsg":"unauthorized","stat":"Not_Ok"}'
SESSION_ELSEWHERE = (
    b'{"stCode":1037,"errMsg":"session ip doesnt match with reqest ip","stat":"Not_Ok"}'
)


def jdata_of(order: dict[str, object]) -> dict[str, object]:
    body = order["body"]
    assert isinstance(body, dict)
    jdata = body["jData"]
    assert isinstance(jdata, dict)
    return jdata


async def test_market_order_arrives_as_limit_at_the_grid_price(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})

    reply = await kotak.place(trader, ig="strategy-7")

    assert reply.status == 200, reply.body
    assert reply.data["stat"] == "Ok"
    assert reply.headers["X-Gateway-Order-Type"] == "LIMIT"
    assert reply.headers["X-Gateway-Limit-Price"] == "1408.5"  # 1401.5 + 0.5%, tick ₹0.10
    assert reply.headers["X-Gateway-LTP"] == "1401.5"
    [order] = await kotak.upstream_kotak_orders()
    assert order["path"] == PLACE
    assert order["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert order["headers"]["x-gateway-user-id"] == trader.user_id
    assert order["headers"]["x-algo-id"] == "99999"
    assert "auth" not in order["headers"]
    assert "sid" not in order["headers"]
    # Only pt and pr changed; every other key kept its value and its place.
    assert jdata_of(order) == kotak_market(pt="L", pr="1408.5", ig="strategy-7")
    assert list(jdata_of(order)) == list(kotak_market())


async def test_sl_m_becomes_sl_priced_from_the_trigger(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.place(trader, pt="SL-M", tt="S", tp="1390")

    assert reply.status == 200, reply.body
    [order] = await kotak.upstream_kotak_orders()
    # 1390 − 0.5% = 1383.05, snapped toward the trigger on the ₹0.10 grid.
    assert jdata_of(order) == kotak_market(pt="SL", tt="S", tp="1390", pr="1383.1")


async def test_amo_market_order_is_converted_the_same_way(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})

    reply = await kotak.place(trader, am="YES", tt="S")

    assert reply.status == 200, reply.body
    [order] = await kotak.upstream_kotak_orders()
    assert jdata_of(order) == kotak_market(am="YES", tt="S", pt="L", pr="1394.5")


async def test_option_is_priced_by_the_option_band_from_the_upstream_quote(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2")

    # No LTP pushed: the gateway asks the upstream's quotes route (the paper prices it at 50).
    reply = await kotak.place(trader, es="nse_fo", ts="NIFTY26JUN25500CE", qt="65")

    assert reply.status == 200, reply.body
    assert reply.headers["X-Gateway-LTP"] == "50.0000"  # the quote's own string
    quotes = [r for r in await gw.upstream_requests() if r["method"] == "GET"]
    assert [q["path"] for q in quotes] == ["/script-details/1.0/quotes/neosymbol/nse_fo|53113/ltp"]
    [order] = await kotak.upstream_kotak_orders()
    # The master says OPT: 10 < p ≤ 100 is a 3% band (an EQ/FUT band would be 2%).
    assert jdata_of(order)["pt"] == "L"
    assert jdata_of(order)["pr"] == reply.headers["X-Gateway-Limit-Price"] == "51.50"


async def test_limit_order_passes_unchanged(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.place(trader, pt="L", pr="1400.05")

    assert reply.status == 200, reply.body
    assert "X-Gateway-Order-Type" not in reply.headers
    [order] = await kotak.upstream_kotak_orders()
    assert jdata_of(order) == kotak_market(pt="L", pr="1400.05")


async def test_modify_is_priced_from_the_placed_order_and_cancel_passes(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    placed = await kotak.place(trader, tt="S", pt="L", pr="1500")
    order_id = placed.data["nOrdNo"]

    modified = await kotak.modify(trader, order_id)
    cancelled = await kotak.cancel(trader, order_id)

    assert modified.status == 200, modified.body
    assert cancelled.status == 200, cancelled.body
    _, modify, cancel = await kotak.upstream_kotak_orders()
    # The modify names no instrument or side: the gateway's record of the order does.
    assert jdata_of(modify)["pt"] == "L"
    assert jdata_of(modify)["pr"] == "1394.5"  # a SELL: 1401.5 − 0.5%
    assert jdata_of(modify)["no"] == order_id
    assert cancel["path"] == CANCEL
    assert jdata_of(cancel) == {"on": order_id, "am": "NO"}


async def test_market_modify_of_an_order_placed_elsewhere_is_refused(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.modify(trader, "999999")

    assert reply.status == 422
    assert reply.data["stCode"] == 9422
    assert "999999" in reply.data["errMsg"]
    assert await kotak.upstream_kotak_orders() == []


async def test_unregistered_ip_gets_kotaks_100008_body(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    stranger = await gw.login(trader, ip="127.0.0.4")

    reply = await kotak.place(stranger)

    assert reply.status == 403
    assert reply.body == NOT_REGISTERED
    # Kotak's body is fixed; the guidance (the address seen, the registered ones) is a header.
    reason = reply.headers["X-Gateway-Reason"]
    assert "came from 127.0.0.4" in reason and "registered IPs: 127.0.0.2" in reason
    assert await gw.upstream_requests() == []


async def test_session_from_another_ip_gets_kotaks_1037_body(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")

    reply = await kotak.place(trader, ip="127.0.0.3")

    assert reply.status == 403
    assert reply.body == SESSION_ELSEWHERE
    assert "created from 127.0.0.2" in reply.headers["X-Gateway-Reason"]
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Auth": "not-a-token", "Sid": "x"},
        {"Auth": "only-auth"},
    ],
    ids=["none", "unknown", "no-sid"],
)
async def test_invalid_token_is_401_900901(
    gw: Harness, kotak: Kotak, headers: dict[str, str]
) -> None:
    await gw.trader("127.0.0.2")
    reply = await gw.request(
        "POST",
        PLACE,
        data=form(kotak_market()),
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert reply.status == 401
    assert reply.data["stCode"] == 900901
    assert reply.data["stat"] == "Not_Ok"
    assert "log in" in reply.data["errMsg"] or "Auth" in reply.data["errMsg"]
    assert await gw.upstream_requests() == []


async def test_sid_of_another_session_is_refused(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    other = await gw.login(trader, ip="127.0.0.2")

    reply = await gw.request(
        "POST",
        PLACE,
        data=form(kotak_market()),
        headers={
            "Auth": other.token,
            "Sid": trader.session_id,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )

    assert reply.status == 401
    assert reply.data["stCode"] == 900901


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'jData={"pt":"MKT","pt":"L"}', "duplicate JSON key 'pt'"),
        (form(kotak_market(qt=1)), "qt must be a string"),  # type: ignore[arg-type]
        (form(kotak_market(pt="MARKET")), "pt must be one of L, MKT, SL, SL-M"),
        (form(kotak_market(tt="BUY")), "tt must be one of B, S"),
        (form(kotak_market()) + b"&" + form(kotak_market()), "jData is sent more than once"),
        (b"jData=not-json", "jData is not valid JSON"),
        (b"", "jData=<JSON object>"),
    ],
    ids=["duplicate-key", "number", "pt", "tt", "two-jdata", "not-json", "empty"],
)
async def test_malformed_jdata_is_400_in_the_kotak_envelope(
    gw: Harness, kotak: Kotak, body: bytes, says: str
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.post(trader, PLACE, body)

    assert reply.status == 400
    assert reply.data["stCode"] == 9400
    assert says in reply.data["errMsg"]
    assert await gw.upstream_requests() == []


async def test_two_order_slots_and_the_newest_session_per_ip(gw: Harness, kotak: Kotak) -> None:
    first = await gw.trader("127.0.0.2", "127.0.0.3")
    second = await gw.login(first, ip="127.0.0.3")

    assert (await kotak.place(first, pt="L", pr="1400")).status == 200
    assert (await kotak.place(second, pt="L", pr="1400")).status == 200

    third = await gw.login(first, ip="127.0.0.2")
    taken = await kotak.place(first, pt="L", pr="1400")
    assert taken.status == 403
    assert taken.data["stCode"] == 94034
    assert "newer session" in taken.data["errMsg"]
    assert (await kotak.place(third, pt="L", pr="1400")).status == 200
    assert (await kotak.place(second, pt="L", pr="1400")).status == 200

    # The session that lost its slot still reads its reports.
    book = await kotak.orders(first)
    assert book.status == 200, book.body
    assert book.data["data"] == {"path": ORDER_BOOK, "user_id": first.user_id}
    sessions = [o["headers"]["x-gateway-session-id"] for o in await kotak.upstream_kotak_orders()]
    expected = [first.session_id, second.session_id, third.session_id, second.session_id]
    assert sessions == [public_session_id(s) for s in expected]  # never the Sid itself


async def test_a_session_whose_client_moved_keeps_reads_and_loses_orders(
    gw: Harness, kotak: Kotak
) -> None:
    trader = await gw.trader("127.0.0.2", "127.0.0.3")

    moved_unregistered = await kotak.place(trader, ip="127.0.0.4", pt="L", pr="1400")
    moved_registered = await kotak.place(trader, ip="127.0.0.3", pt="L", pr="1400")
    reads = [await kotak.orders(trader, ip=ip) for ip in ("127.0.0.4", "127.0.0.3")]

    assert moved_unregistered.body == NOT_REGISTERED
    assert moved_registered.body == SESSION_ELSEWHERE
    assert [r.status for r in reads] == [200, 200]
    assert await kotak.upstream_kotak_orders() == []
    assert (await kotak.place(trader, pt="L", pr="1400")).status == 200


async def test_read_route_forms_are_reencoded(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.post(trader, "/quick/order/history", form({"nOrdNo": "42"}), ip="127.0.0.9")

    assert reply.status == 200, reply.body
    [request] = await gw.upstream_requests()
    assert request["body"] == {"jData": {"nOrdNo": "42"}}
    assert request["headers"]["x-gateway-user-id"] == trader.user_id


async def test_method_not_allowed_on_an_order_route(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request("GET", CANCEL, headers=kotak_headers(trader))

    assert reply.status == 405
    assert reply.data["stCode"] == 9405


async def test_rate_limit_is_429_1040(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    replies = [await kotak.place(trader, pt="L", pr="1400") for _ in range(11)]

    assert [r.status for r in replies] == [200] * 10 + [429]
    assert replies[-1].data["stCode"] == 1040
    assert "Retry-After" in replies[-1].headers
    assert len(await kotak.upstream_kotak_orders()) == 10


async def test_option_without_ltp_is_refused_naming_it(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    # An option in the scrip master that the upstream has no quote for.
    upstox = tmp_path / "upstox.json"
    upstox.write_bytes(sample_data(UPSTOX_SAMPLE))
    scrips = tmp_path / "kotak.csv"
    scrips.write_bytes(
        sample_data(KOTAK_SAMPLE).rstrip(b"\n")
        + b"\n53199,,nse_fo,OPTIDX,NIFTY,NIFTY26JUN30000CE,CE,NIFTY30JUN202630000CE,,"
        b"NIFTY 30JUN26 30000 CE,65,1467302400,3000000.000000,5.000000\n"
    )
    gw = await make_gateway(instruments_files=f"{upstox},{scrips}")
    kotak = Kotak(gw)
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.place(trader, es="nse_fo", ts="NIFTY26JUN30000CE", qt="65")

    assert reply.status == 422
    assert reply.data["stCode"] == 1039
    assert "nse_fo|NIFTY26JUN30000CE" in reply.data["errMsg"]
    assert "no last traded price" in reply.data["errMsg"]
    assert await gw.upstream_orders() == []
    [quote] = await gw.upstream_requests()
    assert quote["path"] == "/script-details/1.0/quotes/neosymbol/nse_fo|53199/ltp"


async def test_unknown_instrument_is_refused_naming_it(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await kotak.place(trader, ts="NOSUCH-EQ")

    assert reply.status == 422
    assert reply.data["stCode"] == 1039
    assert "nse_cm|NOSUCH-EQ" in reply.data["errMsg"]
    assert await gw.upstream_requests() == []


async def test_conversions_are_audited_with_the_original_jdata(gw: Harness, kotak: Kotak) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})
    await kotak.place(trader)

    audit = await gw.admin("GET", f"/audit?user_id={trader.user_id}&limit=5")

    [record] = [r for r in audit.data["data"] if r.get("dialect") == "kotak"]
    assert record["original"] == [json.loads(json.dumps(kotak_market()))]
    assert record["rewritten"][0]["pr"] == "1408.5"
