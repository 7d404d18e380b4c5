"""Strict JSON in, exact JSON out.

Decoding refuses what a permissive parser would silently accept (SPEC §12): duplicate keys
(which value would the broker see?), ``NaN``/``Infinity``, and invalid UTF-8.  Numbers with a
fraction or exponent decode to ``Decimal`` so prices stay exact; encoding writes a ``Decimal``
back as the same digits (``orjson.Fragment``), never through ``float``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

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


_decoder = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=Decimal, parse_constant=_constant)


def decode_json(body: bytes, *, what: str = "request body") -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(Reason.BAD_REQUEST, f"{what} is not valid UTF-8") from exc
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise Refused(
            Reason.BAD_REQUEST, f"{what} is not valid JSON: {exc.msg} at {exc.pos}"
        ) from exc
    except RecursionError as exc:
        raise Refused(Reason.BAD_REQUEST, f"{what} is nested too deeply") from exc


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
