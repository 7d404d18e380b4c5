"""The kotak dialect's tables: jData decoding, re-encoding, envelopes, quotes (no event loop)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.dialects.base import Decoded
from gateway.dialects.kotak import CODES, FORM, KotakDialect
from gateway.instruments import sample_master
from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion
from rules.routes import Route, load_routes
from rules.types import Action, OrderType, Side

from ..harness import form, kotak_market

DIALECT = KotakDialect(load_routes("kotak"))


def route(path: str) -> Route:
    """The shipped table's route: its body shape picks the decoder."""
    match = DIALECT.match("POST", path)
    assert match is not None
    return match.route


PLACE = route("/quick/order/rule/ms/place")
MODIFY = route("/quick/order/vr/modify")
CANCEL = route("/quick/order/cancel")

# As neo_api_client 3.0.9 builds it (services/order.py), tag unset.
SDK_PLACE = kotak_market()


def place(**overrides: Any) -> bytes:
    return form({**SDK_PLACE, **overrides})


def sent_jdata(body: bytes) -> Any:
    [(name, value)] = parse_qsl(body.decode(), strict_parsing=True)
    assert name == "jData"
    return json.loads(value)


# decode: what the rules see ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "side", "order_type", "price", "trigger"),
    [
        ({}, "nse_cm|RELIANCE-EQ", Side.BUY, OrderType.MARKET, "0", "0"),
        ({"tt": "S", "pt": "L", "pr": "1401.50"}, "nse_cm|RELIANCE-EQ", Side.SELL,
         OrderType.LIMIT, "1401.50", "0"),
        ({"pt": "SL", "pr": "1391", "tp": "1390"}, "nse_cm|RELIANCE-EQ", Side.BUY,
         OrderType.SL, "1391", "1390"),
        ({"pt": "SL-M", "tp": "1390.05", "am": "YES"}, "nse_cm|RELIANCE-EQ", Side.BUY,
         OrderType.SL_M, "0", "1390.05"),
        ({"es": "nse_fo", "ts": "NIFTY26JUN25500CE", "pr": None, "tp": None},
         "nse_fo|NIFTY26JUN25500CE", Side.BUY, OrderType.MARKET, None, None),
    ],
    ids=["sdk-mkt", "limit-sell", "sl", "sl-m-amo", "nulls-absent"],
)  # fmt: skip
def test_place_decodes_to_an_intent(
    overrides: dict[str, Any],
    key: str,
    side: Side,
    order_type: OrderType,
    price: str | None,
    trigger: str | None,
) -> None:
    decoded = DIALECT.decode(PLACE, place(**overrides), {})

    [doc] = decoded.docs
    intent = doc.intent
    assert intent.action is Action.PLACE
    assert intent.instrument_key == key
    assert intent.side is side
    assert intent.order_type is order_type
    assert intent.price == (None if price is None else Decimal(price))
    assert intent.trigger_price == (None if trigger is None else Decimal(trigger))
    assert doc.fields == {**SDK_PLACE, **overrides}


def test_tag_comes_from_ig() -> None:
    [doc] = DIALECT.decode(PLACE, place(ig="s7"), {}).docs
    assert doc.intent.tag == "s7"


def test_modify_names_the_order_and_cancel_is_on_am() -> None:
    modify = {"no": "260101000001", "pt": "MKT", "pr": "0", "qt": "2", "vd": "DAY", "tp": "0"}
    [doc] = DIALECT.decode(MODIFY, form(modify), {}).docs
    assert doc.intent.action is Action.MODIFY
    assert doc.intent.order_id == "260101000001"
    assert doc.intent.order_type is OrderType.MARKET
    assert doc.intent.instrument_key is None
    assert doc.intent.side is None

    cancel = DIALECT.decode(CANCEL, form({"on": "260101000001", "am": "NO"}), {})
    [doc] = cancel.docs
    assert doc.intent.action is Action.CANCEL
    assert doc.intent.order_id == cancel.order_id == "260101000001"


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [
        (PLACE, b"", "jData=<JSON object>"),
        (PLACE, b"jData", "not a valid form"),
        (PLACE, b"jData=%ff", "not a valid form"),
        (PLACE, place() + b"&" + place(), "jData is sent more than once"),
        (PLACE, place() + b"&sId=1", "unknown form field(s) sId"),
        (PLACE, b"jData=", "jData is not valid JSON"),
        (PLACE, b"jData=%5B%5D", "jData must be a JSON object"),
        (PLACE, b'jData={"pt":"MKT","pt":"L"}', "duplicate JSON key 'pt'"),
        (PLACE, b"jData=%7B%22pr%22%3ANaN%7D", "NaN is not a valid JSON number"),
        (PLACE, place(qt=1), "qt must be a string (Kotak sends strings), got 1"),
        (PLACE, place(pr=1401.5), "pr must be a string (Kotak sends strings), got 1401.5"),
        (PLACE, place(am=False), "am must be a string"),
        (PLACE, place(ig={"a": "b"}), "ig must be a string"),
        (PLACE, place(pt="MARKET"), "pt must be one of L, MKT, SL, SL-M, got 'MARKET'"),
        (PLACE, place(pt="SP"), "pt must be one of L, MKT, SL, SL-M"),
        (PLACE, place(tt="BUY"), "tt must be one of B, S, got 'BUY'"),
        (PLACE, place(am="Y"), "am must be one of YES, NO"),
        (PLACE, place(qt="0"), "qt must be positive"),
        (PLACE, place(qt="1.5"), "qt must be a whole number"),
        (PLACE, place(dq="-1"), "dq must be a whole number"),
        (PLACE, place(pr="1e3"), "pr must be a price"),
        (PLACE, place(pr="-1"), "pr must be a price"),
        (PLACE, place(tp="NaN"), "tp must be a price"),
        (PLACE, place(es=None), "place: jData is missing es"),
        (PLACE, place(ts=""), "place: jData is missing ts"),
        (PLACE, place(tt=None, qt=None), "place: jData is missing tt, qt"),
        (PLACE, place(pt="L", pr=None), "a L order needs pr"),
        (PLACE, place(pt="SL", tp=None, pr="10"), "a SL order needs tp"),
        (PLACE, place(pt="SL-M", tp=None), "a SL-M order needs tp"),
        (MODIFY, form({"pt": "L", "pr": "1"}), "modify: jData is missing no"),
        (MODIFY, form({"no": "1", "pt": "LIMIT"}), "pt must be one of"),
        (CANCEL, form({"am": "NO"}), "cancel: jData is missing on"),
        (CANCEL, form({"on": 1}), "on must be a string"),
    ],
)
def test_malformed_requests_are_refused(route: Route, body: bytes, says: str) -> None:
    with pytest.raises(Refused) as refused:
        DIALECT.decode(route, body, {})
    assert refused.value.refusal.reason is Reason.BAD_REQUEST
    assert says in refused.value.refusal.message


# apply + encode: what the upstream gets ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "order_type", "limit", "want"),
    [
        ({}, OrderType.LIMIT, "1408.5", {"pt": "L", "pr": "1408.5"}),
        ({"am": "YES", "tt": "S"}, OrderType.LIMIT, "1394.50",
         {"pt": "L", "pr": "1394.50", "am": "YES", "tt": "S"}),
        ({"pt": "SL-M", "tp": "1390"}, OrderType.SL, "1396.9",
         {"pt": "SL", "pr": "1396.9", "tp": "1390"}),
    ],
    ids=["mkt", "amo-sell", "sl-m"],
)  # fmt: skip
def test_conversion_rewrites_pt_and_pr_only(
    overrides: dict[str, Any], order_type: OrderType, limit: str, want: dict[str, str]
) -> None:
    decoded = DIALECT.decode(PLACE, place(**overrides), {})
    [doc] = decoded.docs
    conversion = Conversion(
        original_type=doc.intent.order_type or OrderType.MARKET,
        order_type=order_type,
        limit_price=Decimal(limit),
        reference=Decimal("1401.5"),
        band=Decimal("7"),
        ltp=Decimal("1401.5"),
    )

    DIALECT.apply(doc, conversion)
    body, content_type = DIALECT.encode(decoded)

    assert content_type == FORM == "application/x-www-form-urlencoded"
    sent = sent_jdata(body)
    assert sent == {**SDK_PLACE, **want}
    assert list(sent) == list(SDK_PLACE)
    assert doc.conversion is conversion


def test_untouched_requests_are_reencoded_as_they_came() -> None:
    jdata = {"on": "2601", "am": "NO", "ts": "x y+z&=%"}
    decoded = DIALECT.decode(CANCEL, form(jdata), {})

    body, _ = DIALECT.encode(decoded)

    assert sent_jdata(body) == jdata
    assert body.startswith(b"jData=")


def test_nothing_to_encode() -> None:
    assert DIALECT.encode(Decoded()) == (b"", "")


def test_limit_price_is_written_as_plain_digits() -> None:
    decoded = DIALECT.decode(PLACE, place(), {})
    [doc] = decoded.docs
    DIALECT.apply(
        doc,
        Conversion(
            OrderType.MARKET, OrderType.LIMIT, Decimal("1E+1"), Decimal(10), Decimal(0), None
        ),
    )
    assert doc.fields["pr"] == "10"


# envelopes ------------------------------------------------------------------------------------


def test_kotaks_two_bodies_byte_for_byte() -> None:
    assert (
        DIALECT.refusal(Refuse(Reason.IP_NOT_REGISTERED, "whatever the rules said")).body
        == b'{"stCode":100008,"errMsg":"unauthorized","stat":"Not_Ok"}'
    )
    assert (
        DIALECT.refusal(Refuse(Reason.SESSION_IP_MISMATCH, "details")).body
        == b'{"stCode":1037,"errMsg":"session ip doesnt match with reqest ip","stat":"Not_Ok"}'
    )


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (Reason.INVALID_TOKEN, 900901),
        (Reason.LTP_UNAVAILABLE, 1039),
        (Reason.MARKET_REJECTED, 1039),
        (Reason.RATE_LIMITED, 1040),
        (Reason.SLOT_TAKEN, 94034),
        (Reason.FOREIGN_ORDER, 94033),
        (Reason.BAD_REQUEST, 9400),
    ],
)
def test_other_refusals_carry_their_code_and_the_message(reason: Reason, code: int) -> None:
    response = DIALECT.refusal(Refuse(reason, "do this next", retry_after=0.2))
    assert response.status == reason.status
    assert json.loads(response.body) == {  # type: ignore[arg-type]
        "stCode": code,
        "errMsg": "do this next",
        "stat": "Not_Ok",
    }


def test_every_reason_has_a_code() -> None:
    assert set(CODES) == set(Reason)


def test_rate_limit_refusal_says_when_to_retry() -> None:
    response = DIALECT.refusal(Refuse(Reason.RATE_LIMITED, "slow down", retry_after=0.2))
    assert response.headers["Retry-After"] == "1"


# credentials ---------------------------------------------------------------------------------


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_token_is_auth_and_sid() -> None:
    token = DIALECT.token(_headers(("Auth", " tok "), ("Sid", "sid"), ("Authorization", "ck")))
    assert (token.value, token.session_id) == ("tok", "sid")


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ((), Reason.INVALID_TOKEN),
        ((("Auth", "tok"),), Reason.INVALID_TOKEN),
        ((("Sid", "sid"),), Reason.INVALID_TOKEN),
        ((("Auth", " "), ("Sid", "sid")), Reason.INVALID_TOKEN),
        ((("Auth", "a"), ("Auth", "b"), ("Sid", "sid")), Reason.BAD_REQUEST),
        ((("Auth", "a"), ("Sid", "s"), ("Sid", "t")), Reason.BAD_REQUEST),
    ],
    ids=["none", "no-sid", "no-auth", "blank", "two-auth", "two-sid"],
)
def test_bad_credentials(pairs: tuple[tuple[str, str], ...], reason: Reason) -> None:
    with pytest.raises(Refused) as refused:
        DIALECT.token(_headers(*pairs))
    assert refused.value.refusal.reason is reason


# routes, order ids, quotes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("POST", "/quick/order/rule/ms/place", Action.PLACE),
        ("POST", "/quick/order/vr/modify", Action.MODIFY),
        ("POST", "/quick/order/cancel", Action.CANCEL),
        ("GET", "/quick/order/cancel", None),
        ("GET", "/quick/user/orders", None),
        ("POST", "/quick/order/history", None),
    ],
)
def test_order_routes(method: str, path: str, action: Action | None) -> None:
    match = DIALECT.match(method, path)
    assert (None if match is None else match.route.action) is action


@pytest.mark.parametrize(
    ("path", "owned"),
    [
        ("/quick/user/orders", True),
        ("/script-details/1.0/quotes/neosymbol/nse_cm|2885/ltp", True),
        ("/portfolio/v2/positions", True),
        ("/market-data/1.0/watchlist/expiries", True),
        ("/v2/order/place", False),
        ("/v1/orders", False),
        ("/gateway/v1/family", False),
    ],
)
def test_prefixes(path: str, owned: bool) -> None:
    assert DIALECT.owns(path) is owned


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        (b'{"nOrdNo":"260101000001","stat":"Ok","stCode":200}', ["260101000001"]),
        (b'{"nOrdNo":260101000001,"stat":"Ok"}', ["260101000001"]),
        (b'{"stat":"Not_Ok","stCode":1039}', []),
        (b'{"nOrdNo":true}', []),
        (b"[]", []),
        (b"not json", []),
    ],
)
def test_order_ids(body: bytes, ids: list[str]) -> None:
    assert DIALECT.order_ids(PLACE, body) == ids


RELIANCE = sample_master().get("nse_cm|RELIANCE-EQ")
OPTION = sample_master().get("nse_fo|NIFTY26JUN25500CE")


def test_quote_path_uses_segment_and_token() -> None:
    assert RELIANCE is not None
    assert OPTION is not None
    assert DIALECT.ltp_path(RELIANCE) == "/script-details/1.0/quotes/neosymbol/nse_cm|2885/ltp"
    assert DIALECT.ltp_path(OPTION) == "/script-details/1.0/quotes/neosymbol/nse_fo|53113/ltp"


@pytest.mark.parametrize(
    ("quotes", "ltp"),
    [
        ([{"exchange_token": "2885", "exchange": "nse_cm", "ltp": "1401.5000"}], "1401.5000"),
        ([{"exchange_token": "1594", "ltp": "1"}, {"exchange_token": "2885", "ltp": "7"}], "7"),
        ([{"exchange_token": "2885", "exchange": "bse_cm", "ltp": "1401"}], None),
        ([{"exchange_token": "2885", "ltp": "0.0000"}], None),
        ([{"exchange_token": "2885", "ltp": "abc"}], None),
        ([{"exchange_token": "2885", "ltp": None}], None),
        ([{"exchange_token": "2885", "ltp": True}], None),
        ([], None),
        ({"stat": "Not_Ok"}, None),
    ],
)
def test_parse_ltp(quotes: Any, ltp: str | None) -> None:
    assert RELIANCE is not None
    got = DIALECT.parse_ltp(RELIANCE, json.dumps(quotes).encode())
    assert got == (None if ltp is None else Decimal(ltp))


def test_parse_ltp_of_garbage() -> None:
    assert RELIANCE is not None
    assert DIALECT.parse_ltp(RELIANCE, b"<html>") is None


def test_options_come_from_the_master_not_the_symbol() -> None:
    assert OPTION is not None
    assert OPTION.kind.value == "OPT"
    assert OPTION.tick_size == Decimal("0.05")


# read routes ----------------------------------------------------------------------------------


def test_read_route_forms_are_reencoded_strictly() -> None:
    body, content_type = DIALECT.reencode_other(b"jData=%7B%22nOrdNo%22%3A+%2242%22%7D&x=1", FORM)
    assert content_type == FORM
    assert parse_qsl((body or b"").decode()) == [("jData", '{"nOrdNo":"42"}'), ("x", "1")]
    assert DIALECT.reencode_other(b"", FORM) == (None, "")
    assert DIALECT.reencode_other(b'{"a":1}', "application/json") == (
        b'{"a":1}',
        "application/json",
    )
    with pytest.raises(Refused):
        DIALECT.reencode_other(b'jData={"a":1,"a":2}', FORM)


@pytest.mark.parametrize("path", ["/quick/order/co/exit", "/quick/order/bo/exit"])
def test_cover_and_bracket_exits_are_cancels_of_the_named_order(path: str) -> None:
    exit_route = route(path)
    assert exit_route.action is Action.CANCEL
    decoded = DIALECT.decode(exit_route, form({"on": "260101000007", "am": "NO"}), {})
    [doc] = decoded.docs
    assert decoded.order_id == doc.intent.order_id == "260101000007"
    with pytest.raises(Refused, match="cancel: jData is missing on"):
        DIALECT.decode(exit_route, form({"am": "NO"}), {})
