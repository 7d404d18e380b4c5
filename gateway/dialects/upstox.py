"""The upstox dialect: Upstox API v2/v3 JSON (SPEC §2), modelled on Upstox's order API.

Order bodies are decoded strictly: every known field has one JSON type (a boolean is never a
number), unknown fields are refused rather than silently forwarded or dropped, and prices are
``Decimal``.  Error codes are Upstox's where Upstox has one (UDAPI100050 invalid token,
UDAPI1154 static IP, UDAPI1158 market orders, UDAPI10005 rate, UDAPI118x/1179 static-IP
registry); the ``UDAPI9xxx`` codes are the gateway's own and listed in the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote as urlquote

from aiohttp import web
from multidict import CIMultiDictProxy

from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion, OrderIntent
from rules.routes import Route
from rules.types import Action, CredentialKind, Instrument, OrderType, Side

from ..codec import decode_answer, decode_json, encode_json
from .base import (
    Decoded,
    Decoder,
    Dialect,
    OrderDoc,
    Token,
    bearer,
    decode_json_object,
    decode_none,
    refusal_response,
)
from .fields import Spec, check_fields, is_bool, is_int, is_number, is_str, one_of

CODES: dict[Reason, str] = {
    Reason.INVALID_TOKEN: "UDAPI100050",
    Reason.IP_NOT_REGISTERED: "UDAPI1154",
    Reason.SESSION_IP_MISMATCH: "UDAPI1154",
    Reason.SLOT_TAKEN: "UDAPI1154",
    Reason.RATE_LIMITED: "UDAPI10005",
    Reason.LTP_UNAVAILABLE: "UDAPI1158",
    Reason.MARKET_REJECTED: "UDAPI1158",
    Reason.PRIMARY_IP_MISSING: "UDAPI1182",
    Reason.INVALID_IP: "UDAPI1183",
    Reason.SAME_IPS: "UDAPI1184",
    Reason.CHANGE_TOO_SOON: "UDAPI1185",
    Reason.CONCURRENT_UPDATE: "UDAPI1186",
    Reason.IP_CHANGE_NOT_PERMITTED: "UDAPI1179",
    # The gateway's own codes: UDAPI9 + the HTTP status (+ a digit where two share one).
    Reason.BAD_REQUEST: "UDAPI9400",
    Reason.BAD_FORWARDED: "UDAPI9400",
    Reason.INVALID_CREDENTIALS: "UDAPI9401",
    Reason.CIDR_NOT_ALLOWED: "UDAPI9403",
    Reason.READ_ONLY_TOKEN: "UDAPI94031",
    Reason.FORBIDDEN: "UDAPI94032",
    Reason.FOREIGN_ORDER: "UDAPI94033",
    Reason.NOT_FOUND: "UDAPI9404",
    Reason.METHOD_NOT_ALLOWED: "UDAPI9405",
    Reason.IP_TAKEN: "UDAPI9409",
    Reason.CONFLICT: "UDAPI94091",
    Reason.BODY_TOO_LARGE: "UDAPI9413",
    Reason.HEADERS_TOO_LARGE: "UDAPI9431",
    Reason.HTTP_VERSION_NOT_SUPPORTED: "UDAPI9505",
    Reason.EXPECTATION_FAILED: "UDAPI9417",
    Reason.UNKNOWN_ORDER: "UDAPI9422",
    Reason.IDEMPOTENCY_MISMATCH: "UDAPI94221",
    Reason.TOO_MANY_ORDERS: "UDAPI94222",
    Reason.UPSTREAM_FAILED: "UDAPI9502",
    Reason.STORE_UNAVAILABLE: "UDAPI9503",
    Reason.UPSTREAM_UNAVAILABLE: "UDAPI95031",
    Reason.UPSTREAM_TIMEOUT: "UDAPI9504",
    Reason.INTERNAL_ERROR: "UDAPI9500",
}


def envelope(refuse: Refuse) -> dict[str, Any]:
    return {
        "status": "error",
        "errors": [
            {
                "error_code": CODES[refuse.reason],
                "message": refuse.message,
                "property_path": None,
                "invalid_value": None,
            }
        ],
    }


def error_response(refuse: Refuse) -> web.Response:
    return refusal_response(envelope(refuse), refuse)


_PLACE: Spec = {
    "quantity": (is_int, "an integer", True),
    "product": (is_str, "a string", True),
    "validity": (is_str, "a string", True),
    "price": (is_number, "a number", True),
    "tag": (lambda v: v is None or is_str(v), "a string", False),
    "instrument_token": (is_str, "a string", True),
    "order_type": (one_of("MARKET", "LIMIT", "SL", "SL-M"), "MARKET, LIMIT, SL or SL-M", True),
    "transaction_type": (one_of("BUY", "SELL"), "BUY or SELL", True),
    "disclosed_quantity": (is_int, "an integer", True),
    "trigger_price": (is_number, "a number", True),
    "is_amo": (is_bool, "true or false", True),
}


def _protection(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (0 <= v <= 25 or v == -1)


# SPEC §2: an integer 0 to 25, or -1, wherever the SDK sends it (PlaceOrderV3Request,
# MultiOrderRequest, ModifyOrderRequest for v2 and v3, GttRule); forwarded as sent.
_MARKET_PROTECTION = (_protection, "an integer from 0 to 25, or -1", False)
_PLACE_V3: Spec = {
    **_PLACE,
    "slice": (is_bool, "true or false", False),
    "market_protection": _MARKET_PROTECTION,
}
_MULTI: Spec = {
    **_PLACE,
    "correlation_id": (is_str, "a string", True),
    "slice": _PLACE_V3["slice"],
    "market_protection": _MARKET_PROTECTION,
}
_MODIFY: Spec = {
    "order_id": (is_str, "a string", True),
    "order_type": _PLACE["order_type"],
    "quantity": (is_int, "an integer", False),
    "validity": (is_str, "a string", False),
    "price": (is_number, "a number", False),
    "disclosed_quantity": (is_int, "an integer", False),
    "trigger_price": (is_number, "a number", False),
    "market_protection": _MARKET_PROTECTION,
}


def _check(doc: object, spec: Spec, where: str) -> dict[str, Any]:
    doc = check_fields(doc, spec, where)
    if "quantity" in doc and doc["quantity"] <= 0:
        raise Refused(Reason.BAD_REQUEST, f"{where}: quantity must be positive")
    for name in ("price", "trigger_price", "disclosed_quantity"):
        if name in doc and doc[name] < 0:
            raise Refused(Reason.BAD_REQUEST, f"{where}: {name} must not be negative")
    return doc


def _decimal(value: object) -> Decimal | None:
    return (
        Decimal(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else None
    )


# by value, without Enum's call machinery (check_fields has already checked the values)
_SIDES = {side.value: side for side in Side}
_ORDER_TYPES = {order_type.value: order_type for order_type in OrderType}


def _intent(action: Action, doc: dict[str, Any]) -> OrderIntent:
    side = doc.get("transaction_type")
    order_type = doc.get("order_type")
    return OrderIntent(
        action=action,
        instrument_key=doc.get("instrument_token"),
        side=None if side is None else _SIDES[side],
        order_type=None if order_type is None else _ORDER_TYPES[order_type],
        price=_decimal(doc.get("price")),
        trigger_price=_decimal(doc.get("trigger_price")),
        order_id=doc.get("order_id"),
        tag=doc.get("tag"),
        # SPEC §7: a v3 place (or multi-order leg) with "slice": true is split by the broker
        # into ceil(quantity / freeze quantity) orders, each counted against the rate limit.
        quantity=doc.get("quantity"),
        sliced=doc.get("slice") is True,
    )


def _single(action: Action, spec: Spec, where: str) -> Decoder:
    def decode(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
        doc = _check(decode_json(body), spec, where)
        return Decoded(docs=[OrderDoc(_intent(action, doc), doc)])

    return decode


def _multi_place(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    orders = decode_json(body)
    if not isinstance(orders, list) or not orders:
        raise Refused(Reason.BAD_REQUEST, "multi place takes a non-empty JSON array of orders")
    docs = [_check(o, _MULTI, f"order {i}") for i, o in enumerate(orders)]
    ids = [d["correlation_id"] for d in docs]
    if len(set(ids)) != len(ids):
        raise Refused(Reason.BAD_REQUEST, "correlation_id must be unique within the request")
    return Decoded(docs=[OrderDoc(_intent(Action.PLACE, d), d) for d in docs], many=True)


def _cancel(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    order_id = query.get("order_id", "")
    if not order_id:
        raise Refused(Reason.BAD_REQUEST, "order_id is required in the query string")
    decode_none(route, body, query)
    return Decoded(
        docs=[OrderDoc(OrderIntent(Action.CANCEL, order_id=order_id), {})], order_id=order_id
    )


def _gtt(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    """A GTT order (``GttPlaceOrderRequest``, ``GttModifyOrderRequest``,
    ``GttCancelOrderRequest``): screened and forwarded as parsed.  A placement names its
    instrument and side, so the GTT id the upstream answers is recorded as the account's; a
    modify or cancel names that id (``gtt_order_id``), checked like any order's (SPEC §6)."""
    decoded = decode_json_object(route, body, query)
    fields = decoded.body
    if fields is None:
        if route.action is Action.PLACE:
            return decoded
        fields = {}
    rules = fields.get("rules")
    if rules is not None:
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            raise Refused(Reason.BAD_REQUEST, "gtt: rules must be a list of JSON objects")
        for i, rule in enumerate(rules):
            check, kind, _ = _MARKET_PROTECTION
            if "market_protection" in rule and not check(rule["market_protection"]):
                raise Refused(
                    Reason.BAD_REQUEST,
                    f"gtt rule {i}: market_protection must be {kind},"
                    f" got {rule['market_protection']!r}",
                )
    if route.action is Action.PLACE:
        key, side = fields.get("instrument_token"), fields.get("transaction_type")
        intent = OrderIntent(
            Action.PLACE,
            instrument_key=key if isinstance(key, str) and key else None,
            side=Side(side) if side in ("BUY", "SELL") else None,
        )
        return Decoded(docs=[OrderDoc(intent, fields)])
    gtt_id = fields.get("gtt_order_id")
    if not isinstance(gtt_id, str) or not gtt_id:
        raise Refused(Reason.BAD_REQUEST, "gtt_order_id is required (a string)")
    intent = OrderIntent(route.action, order_id=gtt_id)
    return Decoded(docs=[OrderDoc(intent, fields)], order_id=gtt_id)


class UpstoxDialect(Dialect):
    name: ClassVar[str] = "upstox"
    prefixes: ClassVar[tuple[str, ...]] = ("/v2/", "/v3/")
    forwarded_headers: ClassVar[frozenset[str]] = frozenset(
        {"accept", "accept-language", "api-version"}
    )
    credential_kinds: ClassVar[frozenset[CredentialKind]] = frozenset(CredentialKind)

    def token(self, headers: CIMultiDictProxy[str]) -> Token:
        return bearer(headers)

    def body_decoders(self) -> Mapping[str, Decoder]:
        return {
            "upstox.place": _single(Action.PLACE, _PLACE, "order"),
            "upstox.place_v3": _single(Action.PLACE, _PLACE_V3, "order"),
            "upstox.modify": _single(Action.MODIFY, _MODIFY, "modify"),
            "upstox.multi_place": _multi_place,
            "upstox.cancel": _cancel,
            "upstox.gtt": _gtt,
        }

    def apply(self, doc: OrderDoc, conversion: Conversion) -> None:
        doc.conversion = conversion
        doc.fields["order_type"] = conversion.order_type.value
        doc.fields["price"] = conversion.limit_price

    def encode(self, decoded: Decoded) -> tuple[bytes, str]:
        if decoded.many:
            return encode_json([d.fields for d in decoded.docs]), "application/json"
        if decoded.docs and decoded.docs[0].fields:
            return encode_json(decoded.docs[0].fields), "application/json"
        if decoded.body is not None:
            return encode_json(decoded.body), "application/json"
        return b"", ""

    def envelope(self, refuse: Refuse) -> dict[str, Any]:
        return envelope(refuse)

    def order_ids(self, route: Route, body: bytes) -> list[str]:
        answer = decode_answer(body)
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict):
            if isinstance(data.get("order_ids"), list):
                return [str(i) for i in data["order_ids"]]
            if data.get("order_id") is not None:
                return [str(data["order_id"])]
            if isinstance(data.get("gtt_order_ids"), list):  # a GTT placement
                return [str(i) for i in data["gtt_order_ids"]]
        if isinstance(data, list):
            return [str(d["order_id"]) for d in data if isinstance(d, dict) and "order_id" in d]
        return []

    def algo_headers(self, algo_id: str, algo_name: str) -> dict[str, str]:
        headers = {"X-Algo-Id": algo_id}
        if algo_name:
            headers["X-Algo-Name"] = algo_name
        return headers

    def ltp_path(self, instrument: Instrument) -> str:
        return f"/v3/market-quote/ltp?instrument_key={urlquote(instrument.key, safe='')}"

    def parse_ltp(self, instrument: Instrument, body: bytes) -> Decimal | None:
        # The answer is keyed "NSE_EQ:RELIANCE"; the inner instrument_token is the real key.
        try:
            data = decode_json(body, what="quote").get("data") or {}
        except (Refused, AttributeError):
            return None
        for quote in data.values() if isinstance(data, dict) else ():
            if isinstance(quote, dict) and quote.get("instrument_token") == instrument.key:
                price = _decimal(quote.get("last_price"))
                return price if price is not None and price > 0 else None
        return None
