"""The codec's new refusals at their edges, as a table (the fuzz tests only say "4xx or fine")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.codec import decode_json, encode_json, parse_form
from rules.decisions import Refused

ACCEPTED: list[tuple[bytes, Any]] = [
    (str(2**63 - 1).encode(), 2**63 - 1),
    (str(-(2**63) + 1).encode(), -(2**63) + 1),
    (b"9.2e18", Decimal("9.2e18")),
    (b"0." + b"0" * 99 + b"1", Decimal("1e-100")),
    (b'"\\ud83d\\ude00"', "😀"),  # a high+low pair is one character
    (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, then plain letters
    (b'{"a": ["\\u00e9"]}', {"a": ["é"]}),
]
REFUSED: list[tuple[bytes, str]] = [
    (str(2**63).encode(), "out of range"),
    (str(-(2**63)).encode(), "out of range"),
    (b"1" * 5000, "out of range"),
    (b"9.3e18", "out of range"),
    (b"1e999999999", "out of range"),
    (b"1e99999999999999999999999", "out of range"),
    (b"0." + b"0" * 100 + b"1", "out of range"),
    (b'{"tag": "\\ud800"}', "request body: tag is not valid Unicode"),
    (b'{"tag": "ok\\udfffok"}', "request body: tag is not valid Unicode"),
    (b'[{"a": 1}, {"b": ["x", "\\ud800"]}]', "request body: [1].b[1] is not valid Unicode"),
    (b'{"o": {"\\udc00": 1}}', "request body: a key in o ('\\udc00') is not valid Unicode"),
    (b'"\\ud800"', "request body: the value is not valid Unicode"),
    (b'"\\ude00\\ud83d"', "not valid Unicode"),  # a low before a high is no pair
]


@pytest.mark.parametrize(("body", "value"), ACCEPTED)
def test_accepted(body: bytes, value: Any) -> None:
    decoded = decode_json(body)
    assert decoded == value
    assert decode_json(encode_json(decoded)) == value


@pytest.mark.parametrize(("body", "says"), REFUSED)
def test_refused(body: bytes, says: str) -> None:
    with pytest.raises(Refused) as refused:
        decode_json(body)
    assert refused.value.refusal.status == 400
    assert says in refused.value.refusal.message
    encode_json({"message": refused.value.refusal.message})  # the envelope can be written


@pytest.mark.parametrize("body", [b"jData=%ED%A0%80", b"jData=%FF", b"a=1&b", b"\xff=1"])
def test_forms_that_are_not_utf8_text_are_refused(body: bytes) -> None:
    with pytest.raises(Refused, match="not a valid form"):
        parse_form(body)
