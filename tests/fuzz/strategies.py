"""Hypothesis strategies: valid orders for each dialect and route, and hostile mutations of them.

A body is drawn as a JSON-like tree and written by :func:`dumps`, which can say what
``json.dumps`` will not: a key twice (:class:`Pairs`), a number token as written
(:class:`Raw`: ``1e999999999``, ``NaN``, 5000 digits).  ``json.dumps`` with ``ensure_ascii``
writes a lone surrogate as the ``\\ud800`` escape the issue found, so plain text strategies
that include category ``Cs`` produce it.  :func:`hostile_bytes` then truncates or corrupts the
written bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

RELIANCE = "NSE_EQ|INE002A01018"
UPSTOX_KEYS = (RELIANCE, "NSE_EQ|INE009A01021", "NSE_FO|53113", "NSE_EQ|UNKNOWN0000")
KOTAK_SYMBOLS = (("nse_cm", "RELIANCE-EQ"), ("nse_cm", "INFY-EQ"), ("nse_cm", "NOSUCH-EQ"))
PARADEX_MARKETS = ("BTC-USD-PERP", "ETH-USD-PERP")


@dataclass(frozen=True)
class Raw:
    """A token written into the JSON text as it is (a number JSON or Python would not write)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object written from pairs, so a key can appear twice."""

    items: tuple[tuple[str, Any], ...]


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs | dict):
        items = value.items if isinstance(value, Pairs) else tuple(value.items())
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)  # ensure_ascii: a lone surrogate becomes its \uXXXX escape


# -- values ------------------------------------------------------------------------------

# Odd Unicode: lone surrogates (as escapes once written), controls, NUL, private use, RTL,
# combining marks and astral characters, and the plain text a broker expects.
odd_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=3),
    st.text(st.characters(categories=["Cc", "Co", "Mn", "Zl", "Zp", "Cf"]), max_size=6),
    st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\ufeff", "\u202e", "\x00", "😀", "MKT\x00"]),
)
odd_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**90, max_value=10**120),
    st.sampled_from(
        [
            Raw("1e999999999"),
            Raw("-1E-999999999"),
            Raw("1e99999999999999999999999"),
            Raw("1" * 5000),
            Raw("NaN"),
            Raw("Infinity"),
            Raw("-Infinity"),
            Raw("-0"),
            Raw("0.1e1"),
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-1),
)
scalars = st.one_of(st.none(), st.booleans(), odd_text, odd_numbers)
junk: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def deep(depth: int) -> Raw:
    """Arrays nested ``depth`` deep, written as text (a tree that deep would not ``dumps``)."""
    return Raw("[" * depth + "1" + "]" * depth)


def _price(low: str = "0.05", high: str = "5000") -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2)


# -- valid orders ------------------------------------------------------------------------


@st.composite
def upstox_place(draw: st.DrawFn, *, v3: bool = False, multi: bool = False) -> dict[str, Any]:
    order_type = draw(st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M"]))
    price = draw(_price()) if order_type in ("LIMIT", "SL") else 0
    trigger = draw(_price()) if order_type in ("SL", "SL-M") else 0
    order: dict[str, Any] = {
        "quantity": draw(st.integers(1, 500)),
        "product": draw(st.sampled_from(["D", "I", "MTF"])),
        "validity": draw(st.sampled_from(["DAY", "IOC"])),
        "price": price,
        "tag": draw(st.one_of(st.none(), st.text(max_size=10))),
        "instrument_token": draw(st.sampled_from(UPSTOX_KEYS)),
        "order_type": order_type,
        "transaction_type": draw(st.sampled_from(["BUY", "SELL"])),
        "disclosed_quantity": 0,
        "trigger_price": trigger,
        "is_amo": draw(st.booleans()),
    }
    if v3:
        order["slice"] = draw(st.booleans())
        if draw(st.booleans()):
            order["market_protection"] = draw(st.sampled_from([-1, 0, 5, 25]))
    if multi:
        order["correlation_id"] = draw(st.text("abcdef0123456789", min_size=1, max_size=8))
    return order


@st.composite
def upstox_modify(draw: st.DrawFn) -> dict[str, Any]:
    order_type = draw(st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M"]))
    doc: dict[str, Any] = {"order_id": draw(st.text(max_size=12)), "order_type": order_type}
    if order_type in ("LIMIT", "SL"):
        doc["price"] = draw(_price())
    if order_type in ("SL", "SL-M"):
        doc["trigger_price"] = draw(_price())
    if draw(st.booleans()):
        doc["quantity"] = draw(st.integers(1, 100))
    return doc


@st.composite
def kotak_place(draw: st.DrawFn) -> dict[str, str | None]:
    pt = draw(st.sampled_from(["MKT", "L", "SL", "SL-M"]))
    es, ts = draw(st.sampled_from(KOTAK_SYMBOLS))
    return {
        "am": draw(st.sampled_from(["NO", "YES"])),
        "dq": "0",
        "es": es,
        "mp": "0",
        "pc": draw(st.sampled_from(["CNC", "MIS", "NRML"])),
        "pr": str(draw(_price())) if pt in ("L", "SL") else "0",
        "pt": pt,
        "qt": str(draw(st.integers(1, 500))),
        "rt": "DAY",
        "tp": str(draw(_price())) if pt in ("SL", "SL-M") else "0",
        "ts": ts,
        "tt": draw(st.sampled_from(["B", "S"])),
        "ig": draw(st.one_of(st.none(), st.text(max_size=8))),
        "os": "NEOTRADEAPI",
    }


@st.composite
def kotak_cancel(draw: st.DrawFn) -> dict[str, str | None]:
    return {
        "on": draw(st.text(min_size=1, max_size=12)),
        "am": draw(st.sampled_from(["NO", "YES"])),
    }


@st.composite
def paradex_order(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["MARKET", "LIMIT", "STOP_LIMIT", "STOP_MARKET"]))
    order: dict[str, Any] = {
        "market": draw(st.sampled_from(PARADEX_MARKETS)),
        "side": draw(st.sampled_from(["BUY", "SELL"])),
        "type": kind,
        "size": str(draw(_price("0.001", "10"))),
    }
    if kind in ("LIMIT", "STOP_LIMIT"):
        order["price"] = str(draw(_price("1", "90000")))
    if kind.startswith("STOP"):
        order["trigger_price"] = str(draw(_price("1", "90000")))
    if draw(st.booleans()):
        order["client_id"] = draw(st.text(max_size=12))
    if draw(st.booleans()):
        order["instruction"] = draw(st.sampled_from(["GTC", "POST_ONLY", "IOC"]))
    return order


# -- mutations -----------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """One to three structural mutations of a valid body (or the valid body itself)."""
    doc = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        doc = draw(_mutation(doc))
    return doc


@st.composite
def _mutation(draw: st.DrawFn, doc: Any) -> Any:
    if isinstance(doc, list) and doc and draw(st.booleans()):
        i = draw(st.integers(0, len(doc) - 1))
        return [*doc[:i], draw(_mutation(doc[i])), *doc[i + 1 :]]
    if not isinstance(doc, dict) or not doc:
        return draw(st.one_of(junk, st.just([doc]), st.just(deep(draw(st.integers(1, 3000))))))
    keys = list(doc)
    key = draw(st.sampled_from(keys))
    how = draw(
        st.sampled_from(["drop", "extra", "replace", "odd text", "duplicate", "wrap", "whole"])
    )
    if how == "drop":
        return {k: v for k, v in doc.items() if k != key}
    if how == "extra":
        return {**doc, draw(st.one_of(st.text(max_size=6), odd_text)): draw(junk)}
    if how == "replace":
        return {**doc, key: draw(junk)}
    if how == "odd text":
        return {**doc, key: draw(odd_text)}
    if how == "duplicate":
        return Pairs((*doc.items(), (key, draw(junk))))
    if how == "wrap":
        return {**doc, key: [doc[key]]} if draw(st.booleans()) else [doc]
    return draw(junk)


@st.composite
def hostile_bytes(draw: st.DrawFn, body: bytes) -> bytes:
    """The body as written, or truncated, or with bytes flipped, inserted or invalid UTF-8."""
    how = draw(st.sampled_from(["as is", "as is", "as is", "truncate", "flip", "insert", "bom"]))
    if how == "as is" or not body:
        return body
    i = draw(st.integers(0, len(body) - 1))
    if how == "truncate":
        return body[:i]
    if how == "flip":
        return body[:i] + bytes([body[i] ^ draw(st.integers(1, 255))]) + body[i + 1 :]
    if how == "insert":
        return (
            body[:i]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
            + body[i:]
        )
    return b"\xef\xbb\xbf" + body


def json_body(doc: Any) -> bytes:
    return dumps(doc).encode()


def jdata_form(doc: Any) -> bytes:
    """``jData=<JSON>`` as the Kotak SDK sends it (urlencoded with ``urlencode``)."""
    return urlencode({"jData": dumps(doc)}).encode()
