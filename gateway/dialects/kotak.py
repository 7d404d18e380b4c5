"""The kotak dialect: Kotak Neo Trade API (SPEC §2), checked against kotakneoapi 3.0.9.

The client (``neo_api_client``) sends its order routes as a form with one field,
``jData=<JSON object>`` (``rest.py``: ``data={"jData": json.dumps(body)}``), every value a
string: place is ``am, dq, es, mp, pc, pr, pt, qt, rt, tp, ts, tt, ig, os``
(``services/order.py``), modify adds ``no`` and ``vd`` (``services/modify_order.py``), cancel is
``{on, am}``.  An optional key may be ``null`` (the client sends ``"ig": null`` when no tag is
given), which counts as absent.  A Kotak order names its instrument by ``es`` + ``ts``; the
gateway keys it ``<es>|<ts>`` (``nse_cm|RELIANCE-EQ``), as the scrip master loader does.

jData is decoded strictly: one ``jData`` field, a JSON object without duplicate keys, values
strings (or null), ``pt`` one of L, MKT, SL, SL-M, ``tt`` B or S, quantities and prices plain
decimal strings.  A conversion rewrites only ``pt`` and ``pr``; every other key keeps its value
and its place.

Refusals are Kotak's envelope ``{"stCode", "errMsg", "stat": "Not_Ok"}``.  Two bodies are
Kotak's own, byte for byte (SPEC §5): 100008 "unauthorized" (IP not registered) and 1037
"session ip doesnt match with reqest ip" (session created from another IP).  SPEC fixes 900901
(invalid token), 1039 (no LTP for a market order) and 1040 (rate limited).  The rest are the
gateway's own: 9 + the HTTP status (+ a digit where two reasons share a status), the numbers of
the upstox dialect's UDAPI9xxx codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDictProxy

from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion, OrderIntent
from rules.routes import Route
from rules.types import Action, Instrument, OrderType, Side

from ..codec import decode_answer, decode_json, encode_json, parse_form
from .base import Decoded, Decoder, Dialect, OrderDoc, Token, single_header

FORM = "application/x-www-form-urlencoded"

CODES: dict[Reason, int] = {
    Reason.INVALID_TOKEN: 900901,
    Reason.IP_NOT_REGISTERED: 100008,
    Reason.SESSION_IP_MISMATCH: 1037,
    Reason.LTP_UNAVAILABLE: 1039,
    Reason.MARKET_REJECTED: 1039,
    Reason.RATE_LIMITED: 1040,
    # The gateway's own codes.
    Reason.BAD_REQUEST: 9400,
    Reason.BAD_FORWARDED: 9400,
    Reason.PRIMARY_IP_MISSING: 94001,
    Reason.INVALID_IP: 94002,
    Reason.SAME_IPS: 94003,
    Reason.CHANGE_TOO_SOON: 94004,
    Reason.INVALID_CREDENTIALS: 9401,
    Reason.CIDR_NOT_ALLOWED: 9403,
    Reason.READ_ONLY_TOKEN: 94031,
    Reason.FORBIDDEN: 94032,
    Reason.FOREIGN_ORDER: 94033,
    Reason.SLOT_TAKEN: 94034,
    Reason.IP_CHANGE_NOT_PERMITTED: 94035,
    Reason.NOT_FOUND: 9404,
    Reason.METHOD_NOT_ALLOWED: 9405,
    Reason.IP_TAKEN: 9409,
    Reason.CONFLICT: 94091,
    Reason.CONCURRENT_UPDATE: 94092,
    Reason.BODY_TOO_LARGE: 9413,
    Reason.HEADERS_TOO_LARGE: 9431,
    Reason.HTTP_VERSION_NOT_SUPPORTED: 9505,
    Reason.EXPECTATION_FAILED: 9417,
    Reason.UNKNOWN_ORDER: 9422,
    Reason.IDEMPOTENCY_MISMATCH: 94221,
    Reason.TOO_MANY_ORDERS: 94222,
    Reason.UPSTREAM_FAILED: 9502,
    Reason.STORE_UNAVAILABLE: 9503,
    Reason.UPSTREAM_UNAVAILABLE: 95031,
    Reason.UPSTREAM_TIMEOUT: 9504,
    Reason.INTERNAL_ERROR: 9500,
}

# Kotak's own wording for these two, typo included: clients match on the body.
FIXED_MESSAGES: dict[Reason, str] = {
    Reason.IP_NOT_REGISTERED: "unauthorized",
    Reason.SESSION_IP_MISMATCH: "session ip doesnt match with reqest ip",
}

ORDER_TYPES: dict[str, OrderType] = {
    "L": OrderType.LIMIT,
    "MKT": OrderType.MARKET,
    "SL": OrderType.SL,
    "SL-M": OrderType.SL_M,
}
_PT_OF: dict[OrderType, str] = {order_type: pt for pt, order_type in ORDER_TYPES.items()}
SIDES: dict[str, Side] = {"B": Side.BUY, "S": Side.SELL}
_AMO = ("YES", "NO")

_INTEGER = re.compile(r"[0-9]+")
_PRICE = re.compile(r"[0-9]+(\.[0-9]+)?")


def envelope(refuse: Refuse) -> dict[str, Any]:
    return {
        "stCode": CODES[refuse.reason],
        "errMsg": FIXED_MESSAGES.get(refuse.reason, refuse.message),
        "stat": "Not_Ok",
    }


def parse_jdata(body: bytes) -> dict[str, str | None]:
    """The one ``jData`` field of a form body: a JSON object of strings (or nulls)."""
    pairs = parse_form(body)
    names = [name for name, _ in pairs]
    if names.count("jData") > 1:
        raise Refused(Reason.BAD_REQUEST, "the form field jData is sent more than once")
    if "jData" not in names:
        raise Refused(Reason.BAD_REQUEST, "the body must be the form field jData=<JSON object>")
    others = sorted(set(names) - {"jData"})
    if others:
        raise Refused(
            Reason.BAD_REQUEST,
            f"unknown form field(s) {', '.join(others)}: order routes take only jData",
        )
    doc = decode_json(pairs[0][1].encode(), what="jData")
    if not isinstance(doc, dict):
        raise Refused(Reason.BAD_REQUEST, "jData must be a JSON object")
    for name, value in doc.items():
        if value is not None and not isinstance(value, str):
            shown = encode_json(value).decode()
            raise Refused(
                Reason.BAD_REQUEST,
                f"jData: {name} must be a string (Kotak sends strings), got {shown}",
            )
    return doc


def _present(doc: Mapping[str, str | None], name: str) -> str | None:
    value = doc.get(name)
    return value if value else None


def _choice(
    doc: Mapping[str, str | None], name: str, allowed: Mapping[str, Any] | tuple[str, ...]
) -> str | None:
    value = doc.get(name)
    if value is not None and value not in allowed:
        raise Refused(
            Reason.BAD_REQUEST,
            f"jData: {name} must be one of {', '.join(allowed)}, got {value!r}",
        )
    return value


def _pattern(
    doc: Mapping[str, str | None], name: str, pattern: re.Pattern[str], kind: str
) -> str | None:
    value = doc.get(name)
    if value is not None and not pattern.fullmatch(value):
        raise Refused(Reason.BAD_REQUEST, f"jData: {name} must be {kind}, got {value!r}")
    return value


def _require(doc: Mapping[str, str | None], names: tuple[str, ...], where: str) -> None:
    missing = [name for name in names if not _present(doc, name)]
    if missing:
        raise Refused(Reason.BAD_REQUEST, f"{where}: jData is missing {', '.join(missing)}")


def _intent(action: Action, doc: Mapping[str, str | None], where: str) -> OrderIntent:
    pt = _choice(doc, "pt", ORDER_TYPES)
    tt = _choice(doc, "tt", SIDES)
    _choice(doc, "am", _AMO)
    qt = _pattern(doc, "qt", _INTEGER, 'a whole number of shares, e.g. "1"')
    if qt is not None and int(qt) == 0:
        raise Refused(Reason.BAD_REQUEST, "jData: qt must be positive")
    _pattern(doc, "dq", _INTEGER, 'a whole number, e.g. "0"')
    pr = _pattern(doc, "pr", _PRICE, 'a price in rupees, e.g. "1401.50"')
    tp = _pattern(doc, "tp", _PRICE, 'a price in rupees, e.g. "1390.00"')
    order_type = None if pt is None else ORDER_TYPES[pt]
    if order_type in (OrderType.LIMIT, OrderType.SL) and pr is None:
        raise Refused(Reason.BAD_REQUEST, f"{where}: a {pt} order needs pr (the limit price)")
    if order_type in (OrderType.SL, OrderType.SL_M) and tp is None:
        raise Refused(Reason.BAD_REQUEST, f"{where}: a {pt} order needs tp (the trigger price)")
    es, ts = _present(doc, "es"), _present(doc, "ts")
    return OrderIntent(
        action=action,
        instrument_key=f"{es}|{ts}" if es and ts else None,
        side=None if tt is None else SIDES[tt],
        order_type=order_type,
        price=None if pr is None else Decimal(pr),
        trigger_price=None if tp is None else Decimal(tp),
        order_id=_present(doc, "no") if action is Action.MODIFY else None,
        tag=_present(doc, "ig"),
    )


def _place(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    doc = parse_jdata(body)
    _require(doc, ("es", "ts", "tt", "pt", "qt"), "place")
    return Decoded(docs=[OrderDoc(_intent(Action.PLACE, doc, "place"), doc)])


def _modify(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    doc = parse_jdata(body)
    _require(doc, ("no",), "modify")
    return Decoded(docs=[OrderDoc(_intent(Action.MODIFY, doc, "modify"), doc)])


def _cancel(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    """A cancel, and the cover/bracket order exits, which name the order the same way."""
    doc = parse_jdata(body)
    _require(doc, ("on",), "cancel")
    _choice(doc, "am", _AMO)
    intent = OrderIntent(Action.CANCEL, order_id=_present(doc, "on"))
    return Decoded(docs=[OrderDoc(intent, doc)], order_id=intent.order_id)


class KotakDialect(Dialect):
    name: ClassVar[str] = "kotak"
    prefixes: ClassVar[tuple[str, ...]] = (
        "/quick/",
        "/script-details/",
        "/portfolio/",
        "/market-data/",
        # the client's whatsmyip (neo_api_client services/client_ip.py): a session's read
        "/login/1.0/get-client-ip",
    )
    credential_headers: ClassVar[frozenset[str]] = frozenset({"auth", "sid"})
    # the client sends its consumer key, not a gateway credential, in Authorization
    public_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})

    def token(self, headers: CIMultiDictProxy[str]) -> Token:
        auth = single_header(headers, "Auth")
        sid = single_header(headers, "Sid")
        if auth is None or sid is None or not auth.strip() or not sid.strip():
            raise Refused(
                Reason.INVALID_TOKEN,
                "send Auth: <access_token> and Sid: <session_id> from POST /gateway/v1/session",
            )
        return Token(auth.strip(), sid.strip())

    def body_decoders(self) -> Mapping[str, Decoder]:
        return {"kotak.place": _place, "kotak.modify": _modify, "kotak.cancel": _cancel}

    def apply(self, doc: OrderDoc, conversion: Conversion) -> None:
        doc.conversion = conversion
        doc.fields["pt"] = _PT_OF[conversion.order_type]
        doc.fields["pr"] = format(conversion.limit_price, "f")

    def encode(self, decoded: Decoded) -> tuple[bytes, str]:
        if not decoded.docs:
            return b"", ""
        jdata = encode_json(decoded.docs[0].fields).decode()
        return urlencode({"jData": jdata}).encode(), FORM

    def envelope(self, refuse: Refuse) -> dict[str, Any]:
        return envelope(refuse)

    def refusal(self, refuse: Refuse, extra: Mapping[str, Any] | None = None) -> web.Response:
        response = super().refusal(refuse, extra)
        if refuse.reason in FIXED_MESSAGES:  # the body is Kotak's, byte for byte: guide aside
            response.headers["X-Gateway-Reason"] = refuse.message
        return response

    def order_ids(self, route: Route, body: bytes) -> list[str]:
        answer = decode_answer(body)
        order_id = answer.get("nOrdNo") if isinstance(answer, dict) else None
        if isinstance(order_id, bool) or not isinstance(order_id, str | int):
            return []
        return [str(order_id)] if str(order_id) else []

    def ltp_path(self, instrument: Instrument) -> str:
        return f"/script-details/1.0/quotes/neosymbol/{instrument.exchange}|{instrument.token}/ltp"

    def parse_ltp(self, instrument: Instrument, body: bytes) -> Decimal | None:
        # A JSON array of quotes with string fields; match the one we asked for by its token.
        try:
            quotes = decode_json(body, what="quote")
        except Refused:
            return None
        for quote in quotes if isinstance(quotes, list) else ():
            if not isinstance(quote, dict) or str(quote.get("exchange_token")) != instrument.token:
                continue
            if quote.get("exchange", instrument.exchange) != instrument.exchange:
                continue
            return _positive(quote.get("ltp"))
        return None

    def reencode_other(self, body: bytes, content_type: str) -> tuple[bytes | None, str]:
        """Kotak's read routes post forms too (order history: ``jData={"nOrdNo": …}``)."""
        if not body.strip():
            return None, ""
        if content_type != FORM:
            return super().reencode_other(body, content_type)
        pairs = [
            (name, encode_json(decode_json(value.encode(), what=name)).decode())
            if name == "jData"
            else (name, value)
            for name, value in parse_form(body)
        ]
        return urlencode(pairs).encode(), FORM


def _positive(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None
