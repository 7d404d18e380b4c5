"""Strict JSON and forms in, exact JSON out: the one place each body kind becomes text.

Decoding refuses what a permissive parser would silently accept (SPEC §12): duplicate keys
(which value would the broker see?), ``NaN``/``Infinity``, invalid UTF-8, and text that no
UTF-8 encoder can write back.  That last one is Python's ``json`` accepting a lone UTF-16
surrogate written as an escape (``"\\ud800"``, RFC 8259 §8.2 calls such strings
unpredictable): the value would later fail at orjson, SQLite or the upstream as a 500, so it
is refused here as a 400 naming the field (issue 15).  Numbers with a fraction or exponent
decode to ``Decimal`` so prices stay exact; encoding writes a ``Decimal`` back as the same
digits (``orjson.Fragment``), never through ``float``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson

from rules.decisions import Reason, Refused


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise Refused(Reason.BAD_REQUEST, f"duplicate JSON key {dup!r}")
    return obj


def _constant(name: str) -> Any:
    raise Refused(Reason.BAD_REQUEST, f"{name} is not a valid JSON number")


# Numbers are bounded so that every decoded one can be written back as it was read: orjson
# writes integers of at most 64 bits (a wider one raises TypeError), a Decimal is written in
# plain digits (so 1e999999999 would be a billion of them, and 1e20 comes back as an integer),
# and Python's int() refuses more than 4300 digits with ValueError.  No price or quantity is
# near these bounds.
MAX_MAGNITUDE = 2**63
MAX_FRACTION_DIGITS = 100


def _out_of_range(text: str) -> Refused:
    shown = text if len(text) <= 24 else text[:24] + "…"
    return Refused(
        Reason.BAD_REQUEST,
        f"the number {shown} is out of range (under 2^63 in magnitude, at most"
        f" {MAX_FRACTION_DIGITS} digits after the point)",
    )


def _int(text: str) -> int:
    if len(text) > 20:  # before int(), whose cost grows with the digits
        raise _out_of_range(text)
    value = int(text)
    if abs(value) >= MAX_MAGNITUDE:
        raise _out_of_range(text)
    return value


def _float(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # an exponent past the context's limits
        raise _out_of_range(text) from exc
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # JSON's number grammar has no NaN or Infinity
    # adjusted() first: abs() rounds in the context and overflows past its Emax
    if exponent < -MAX_FRACTION_DIGITS or value.adjusted() > 18 or abs(value) >= MAX_MAGNITUDE:
        raise _out_of_range(text)
    return value


_decoder = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_float, parse_int=_int, parse_constant=_constant
)

# Valid UTF-8 decodes to no surrogate, and ``json`` joins an escaped high+low pair into one
# character: a surrogate can only come from an escape, so a body without one is not walked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def unencodable(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate, which no UTF-8 encoder writes."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _unencodable_at(value: Any, where: str) -> str | None:
    """The path of the first key or string in a decoded document that ``unencodable``."""
    if isinstance(value, str):
        return where if unencodable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if unencodable(key):
                return f"a key{' in ' + where if where else ''} ({key!r})"
            found = _unencodable_at(item, f"{where}.{key}" if where else key)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unencodable_at(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def decode_json(body: bytes, *, what: str = "request body") -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(Reason.BAD_REQUEST, f"{what} is not valid UTF-8") from exc
    try:
        doc = _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise Refused(
            Reason.BAD_REQUEST, f"{what} is not valid JSON: {exc.msg} at {exc.pos}"
        ) from exc
    except RecursionError as exc:
        raise Refused(Reason.BAD_REQUEST, f"{what} is nested too deeply") from exc
    if _SURROGATE_ESCAPE.search(text):
        try:
            where = _unencodable_at(doc, "")
        except RecursionError as exc:  # nested just under the decoder's limit
            raise Refused(Reason.BAD_REQUEST, f"{what} is nested too deeply") from exc
        if where is not None:
            raise Refused(
                Reason.BAD_REQUEST,
                f"{what}: {where or 'the value'} is not valid Unicode"
                " (a lone UTF-16 surrogate escape cannot be written as UTF-8)",
            )
    return doc


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body, strictly: ``name=value`` pairs whose
    percent-decoded bytes are UTF-8 (a percent-encoded surrogate is not, so none gets in)."""
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
        )
    except ValueError as exc:  # UnicodeDecodeError included
        raise Refused(Reason.BAD_REQUEST, f"the body is not a valid form: {exc}") from exc


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_json(value: object) -> bytes:
    return orjson.dumps(value, default=_default)


def decode_answer(body: bytes) -> Any:
    """An upstream's answer, read only for order ids: fast, and ``None`` when it is not JSON
    (prices are never taken from here; quotes go through :func:`decode_json`)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
