"""The paradex dialect: Paradex REST v1 JSON (SPEC §2), modelled on docs.paradex.trade.

Orders are ``{"market", "side", "type", "size", "price", "instruction", "client_id", "flags",
"trigger_price", "signature", "signature_timestamp", …}`` with sizes and prices as decimal
strings; ``POST /v1/orders/batch`` takes a list of 1 to 10 of them.  Cancels name the order in
the path (``DELETE /v1/orders/{id}``) or cancel every open order, optionally of one
``market`` (``DELETE /v1/orders``).  Errors are ``{"error": CODE, "message": …}`` with SPEC's
codes INVALID_TOKEN, LTP_UNAVAILABLE, RATE_LIMITED and the gateway's reason names otherwise.

Paradex lists crypto perpetuals, not Indian instruments, and a Paradex order is signed over its
type and price, so the protection grid leaves these orders alone unless ``rules.paradex_grid``
is set; then only markets found in the instrument master are converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote as urlquote

from multidict import CIMultiDictProxy

from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion, OrderIntent
from rules.routes import Route
from rules.types import Action, CredentialKind, Instrument, OrderType, Side

from ..codec import decode_answer, decode_json
from ..codec import encode_json as _encode
from ..config import RulesConfig
from .base import Decoded, Decoder, Dialect, OrderDoc, Token, bearer
from .fields import Spec, check_fields, is_int, is_str, one_of

MAX_BATCH = 10

# Paradex order types as the protection grid sees them; the others carry their own trigger
# semantics (take profit, stop loss legs) and pass unchanged.
_TYPES: dict[str, OrderType | None] = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "STOP_MARKET": OrderType.SL_M,
    "STOP_LIMIT": OrderType.SL,
    "TAKE_PROFIT_MARKET": None,
    "TAKE_PROFIT_LIMIT": None,
    "STOP_LOSS_MARKET": None,
    "STOP_LOSS_LIMIT": None,
}
_CONVERTED_TYPE = {OrderType.LIMIT: "LIMIT", OrderType.SL: "STOP_LIMIT"}


def envelope(refuse: Refuse) -> dict[str, Any]:
    return {"error": refuse.reason.name, "message": refuse.message}


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _decimal_text(v: object) -> bool:
    """A plain non-negative decimal string, as Paradex sends sizes and prices: no exponent,
    sign, whitespace, NaN or Infinity."""
    return isinstance(v, str) and len(v) <= 40 and _DECIMAL.fullmatch(v) is not None


def _flags(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(f, str) for f in v)


_ORDER: Spec = {
    "market": (lambda v: isinstance(v, str) and bool(v), "a market symbol", True),
    "side": (one_of("BUY", "SELL"), "BUY or SELL", True),
    "type": (one_of(*_TYPES), ", ".join(_TYPES), True),
    "size": (_decimal_text, "a decimal string", True),
    "price": (_decimal_text, "a decimal string", False),
    "trigger_price": (_decimal_text, "a decimal string", False),
    "instruction": (one_of("GTC", "POST_ONLY", "IOC", "RPI"), "GTC, POST_ONLY, IOC or RPI", False),
    "client_id": (is_str, "a string", False),
    "flags": (_flags, "a list of strings", False),
    "signature": (is_str, "a string", False),
    "signature_timestamp": (is_int, "an integer", False),
    "signature_type": (is_str, "a string", False),
    "signed_impact_price": (_decimal_text, "a decimal string", False),
    "recv_window": (is_int, "an integer", False),
    "stp": (is_str, "a string", False),
    "on_behalf_of_account": (is_str, "a string", False),
}
_MODIFY: Spec = {**_ORDER, "id": (is_str, "a string", False)}
_ALGO: Spec = {
    "algo_type": (one_of("TWAP"), "TWAP", True),
    "duration_seconds": (is_int, "an integer", True),
    "market": _ORDER["market"],
    "side": _ORDER["side"],
    "size": _ORDER["size"],
    "type": (one_of("MARKET"), "MARKET (the only algo order type)", True),
    "signature": (is_str, "a string", True),
    "signature_timestamp": (is_int, "an integer", True),
    "recv_window": (is_int, "an integer", False),
    "on_behalf_of_account": (is_str, "a string", False),
}
_CANCEL_BATCH: Spec = {
    "order_ids": (_flags, "a list of strings", False),
    "client_order_ids": (_flags, "a list of strings", False),
}


def _check(doc: object, spec: Spec, where: str) -> dict[str, Any]:
    doc = check_fields(doc, spec, where)
    if "size" in doc and Decimal(doc["size"]) <= 0:
        raise Refused(Reason.BAD_REQUEST, f"{where}: size must be positive")
    return doc


def _intent(action: Action, doc: dict[str, Any], order_id: str | None = None) -> OrderIntent:
    price, trigger = doc.get("price"), doc.get("trigger_price")
    return OrderIntent(
        action=action,
        instrument_key=doc["market"],
        side=Side(doc["side"]),
        order_type=_TYPES[doc["type"]],
        price=None if price is None else Decimal(price),
        trigger_price=None if trigger is None else Decimal(trigger),
        order_id=order_id,
        tag=doc.get("client_id") or None,
    )


def _no_body(body: bytes, path: str) -> None:
    if body.strip():
        raise Refused(Reason.BAD_REQUEST, f"{path} takes no request body")


def _order(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    doc = _check(decode_json(body), _ORDER, "order")
    return Decoded(docs=[OrderDoc(_intent(Action.PLACE, doc), doc)])


def _batch(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    orders = decode_json(body)
    if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_BATCH:
        raise Refused(Reason.BAD_REQUEST, f"a batch is a JSON array of 1 to {MAX_BATCH} orders")
    checked = [_check(o, _ORDER, f"order {i}") for i, o in enumerate(orders)]
    return Decoded(docs=[OrderDoc(_intent(Action.PLACE, d), d) for d in checked], many=True)


def _modify(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    order_id = query["id"]
    doc = _check(decode_json(body), _MODIFY, "modify")
    if doc.get("id", order_id) != order_id:
        raise Refused(Reason.BAD_REQUEST, "modify: id must be the order id in the path")
    return Decoded(docs=[OrderDoc(_intent(Action.MODIFY, doc, order_id), doc)])


def _cancel(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    _no_body(body, route.template)
    order_id = query["id"]
    return Decoded(
        docs=[OrderDoc(OrderIntent(Action.CANCEL, order_id=order_id), {})], order_id=order_id
    )


def _cancel_batch(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    ids = _check(decode_json(body), _CANCEL_BATCH, "cancel batch")
    docs = [
        OrderDoc(OrderIntent(Action.CANCEL, order_id=order_id), {})
        for order_id in ids.get("order_ids", [])
    ]
    # SPEC §7 counts a batch cancel by its ids, client ids too (the gateway does not record
    # client ids, so only order ids have their ownership checked).
    docs += [OrderDoc(OrderIntent(Action.CANCEL), {}) for _ in ids.get("client_order_ids", [])]
    return Decoded(docs=docs, body=ids)


def _cancel_all(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    _no_body(body, route.template)
    if "market" in query and not query["market"]:
        raise Refused(Reason.BAD_REQUEST, "market, when given, must name a market")
    return Decoded()


def _algo(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    """A TWAP (api/prod/algos/create-order): one request, one order for the rate limit; its
    intent is MARKET, so the grid, when on for a known market, refuses it in ``apply``."""
    doc = _check(decode_json(body), _ALGO, "algo order")
    if doc["duration_seconds"] <= 0:
        raise Refused(Reason.BAD_REQUEST, "algo order: duration_seconds must be positive")
    intent = OrderIntent(
        action=Action.PLACE,
        instrument_key=doc["market"],
        side=Side(doc["side"]),
        order_type=OrderType.MARKET,
    )
    return Decoded(docs=[OrderDoc(intent, doc)])


class ParadexDialect(Dialect):
    name: ClassVar[str] = "paradex"
    prefixes: ClassVar[tuple[str, ...]] = ("/v1/",)
    credential_kinds: ClassVar[frozenset[CredentialKind]] = frozenset(
        {CredentialKind.LOGIN, CredentialKind.API_TOKEN}
    )

    def is_order_path(self, path: str) -> bool:
        # Paradex's reads share the order paths (GET /v1/orders, GET /v1/orders/{id}); any
        # other write there is refused by the route table's order prefixes (fail closed).
        return False

    def token(self, headers: CIMultiDictProxy[str]) -> Token:
        return bearer(headers)

    def body_decoders(self) -> Mapping[str, Decoder]:
        return {
            "paradex.order": _order,
            "paradex.batch": _batch,
            "paradex.modify": _modify,
            "paradex.cancel": _cancel,
            "paradex.cancel_all": _cancel_all,
            "paradex.cancel_batch": _cancel_batch,
            "paradex.algo": _algo,
        }

    def apply(self, doc: OrderDoc, conversion: Conversion) -> None:
        if "algo_type" in doc.fields:
            # A TWAP's children are MARKET orders the exchange places later, every 30 s, and
            # the algo accepts no other type: the edge cannot price them, so under the grid
            # the algo is refused rather than forwarded unpriced.
            raise Refused(
                Reason.MARKET_REJECTED,
                f"an algo order on {doc.intent.instrument_key} places MARKET children the"
                " gateway cannot price; place LIMIT orders instead",
            )
        doc.conversion = conversion
        doc.fields["type"] = _CONVERTED_TYPE[conversion.order_type]
        doc.fields["price"] = str(conversion.limit_price)

    def encode(self, decoded: Decoded) -> tuple[bytes, str]:
        if decoded.many:
            return _encode([d.fields for d in decoded.docs]), "application/json"
        if decoded.body is not None:
            return _encode(decoded.body), "application/json"
        if decoded.docs and decoded.docs[0].fields:
            return _encode(decoded.docs[0].fields), "application/json"
        return b"", ""

    def applies_grid(self, rules: RulesConfig, *, known_instrument: bool) -> bool:
        # Paradex markets are crypto perpetuals: the Indian grid is off unless configured,
        # and then prices only markets the instrument master knows.
        return rules.paradex_grid and known_instrument

    def envelope(self, refuse: Refuse) -> dict[str, Any]:
        return envelope(refuse)

    def order_ids(self, route: Route, body: bytes) -> list[str]:
        answer = decode_answer(body)
        if not isinstance(answer, dict):
            return []
        if route.body in ("paradex.order", "paradex.algo"):  # one order (or algo) answered
            order_id = answer.get("id")
            return [order_id] if isinstance(order_id, str) and order_id else []
        orders, errors = answer.get("orders"), answer.get("errors")
        if not isinstance(orders, list) or not all(
            isinstance(o, dict) and isinstance(o.get("id"), str) for o in orders
        ):
            return []
        # Ids pair with the request's orders only when every order was accepted; after a
        # partial failure nothing is remembered rather than something misattributed.
        if isinstance(errors, list) and any(e is not None for e in errors):
            return []
        return [o["id"] for o in orders]

    def ltp_path(self, instrument: Instrument) -> str:
        return f"/v1/markets/summary?market={urlquote(instrument.key, safe='')}"

    def parse_ltp(self, instrument: Instrument, body: bytes) -> Decimal | None:
        try:
            results = decode_json(body, what="quote").get("results") or []
        except (Refused, AttributeError):
            return None
        for summary in results if isinstance(results, list) else ():
            if isinstance(summary, dict) and summary.get("symbol") == instrument.key:
                price = summary.get("last_traded_price")
                if isinstance(price, str) and _decimal_text(price) and Decimal(price) > 0:
                    return Decimal(price)
        return None
