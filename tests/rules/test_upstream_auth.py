"""Stored upstream credentials (SPEC §10): what may be stored and sent as a broker's headers."""

from __future__ import annotations

import pytest

from rules.decisions import Reason, Refused
from rules.upstream_auth import MAX_HEADERS, check_header, parse_header_line, parse_upstream_auth

BEARER = "Bearer eyJhbGciOi.JIUzI1NiJ9"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": BEARER}, {"Authorization": BEARER}),
        ({"authorization": BEARER}, {"authorization": BEARER}),
        ({"Api-Key": "k", "X-Api-Secret": "s"}, {"Api-Key": "k", "X-Api-Secret": "s"}),
        ({"!#$%&'*+-.^_`|~09az": "v"}, {"!#$%&'*+-.^_`|~09az": "v"}),
        ({"Auth": "a\tb c"}, {"Auth": "a\tb c"}),  # tabs and spaces inside a value
        ({"Auth": "caf\u00e9"}, {"Auth": "caf\u00e9"}),  # obs-text (Latin-1)
        ({"Auth": "x" * 4096}, {"Auth": "x" * 4096}),
        ({"N" * 256: "v"}, {"N" * 256: "v"}),
        ({f"H{i}": "v" for i in range(MAX_HEADERS)}, {f"H{i}": "v" for i in range(MAX_HEADERS)}),
    ],
)
def test_accepted(headers: dict[str, str], expected: dict[str, str]) -> None:
    assert parse_upstream_auth({"headers": headers}) == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        # shape
        ([], "the body must be"),
        ({}, "the body must be"),
        ({"headers": {"A": "b"}, "extra": 1}, "the body must be"),
        ({"headers": []}, "1 to 8 headers"),
        ({"headers": {}}, "1 to 8 headers"),
        ({"headers": {f"H{i}": "v" for i in range(MAX_HEADERS + 1)}}, "1 to 8 headers"),
        # names
        ({"headers": {"": "v"}}, "not an HTTP token"),
        ({"headers": {"Bad Name": "v"}}, "not an HTTP token"),
        ({"headers": {"Bad:Name": "v"}}, "not an HTTP token"),
        ({"headers": {"Bad\r\nName": "v"}}, "not an HTTP token"),
        ({"headers": {"Bad\x00": "v"}}, "not an HTTP token"),
        ({"headers": {"Ünïcode": "v"}}, "not an HTTP token"),
        ({"headers": {"N" * 257: "v"}}, "not an HTTP token"),
        ({"headers": {"Authorization": "a", "AUTHORIZATION": "b"}}, "given twice"),
        # the gateway's own and message-framing names
        ({"headers": {"Host": "broker"}}, "gateway's own"),
        ({"headers": {"content-length": "1"}}, "gateway's own"),
        ({"headers": {"Content-Type": "text/plain"}}, "gateway's own"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "gateway's own"),
        ({"headers": {"Connection": "close"}}, "gateway's own"),
        ({"headers": {"Keep-Alive": "5"}}, "gateway's own"),
        ({"headers": {"Upgrade": "h2c"}}, "gateway's own"),
        ({"headers": {"TE": "trailers"}}, "gateway's own"),
        ({"headers": {"Proxy-Authorization": "x"}}, "gateway's own"),
        ({"headers": {"X-HTTP-Method-Override": "DELETE"}}, "gateway's own"),
        ({"headers": {"X-Forwarded-For": "1.2.3.4"}}, "gateway's own"),
        ({"headers": {"X-Gateway-User-Id": "AB1234"}}, "gateway's own"),
        ({"headers": {"x-gateway-signature": "s"}}, "gateway's own"),
        ({"headers": {"X-Algo-Id": "ALGO"}}, "gateway's own"),
        # values
        ({"headers": {"Auth": 7}}, "1 to 4096 characters"),
        ({"headers": {"Auth": None}}, "1 to 4096 characters"),
        ({"headers": {"Auth": ""}}, "1 to 4096 characters"),
        ({"headers": {"Auth": "x" * 4097}}, "1 to 4096 characters"),
        ({"headers": {"Auth": "a\r\nX-Injected: 1"}}, "control character"),
        ({"headers": {"Auth": "a\nb"}}, "control character"),
        ({"headers": {"Auth": "a\rb"}}, "control character"),
        ({"headers": {"Auth": "a\x00b"}}, "control character"),
        ({"headers": {"Auth": "a\x7fb"}}, "control character"),
        ({"headers": {"Auth": "snow\u2603"}}, "outside"),
        ({"headers": {"Auth": " padded"}}, "whitespace"),
        ({"headers": {"Auth": "padded\t"}}, "whitespace"),
    ],
)
def test_refused(body: object, says: str) -> None:
    with pytest.raises(Refused) as exc:
        parse_upstream_auth(body)
    assert exc.value.refusal.reason is Reason.BAD_REQUEST
    assert says in exc.value.refusal.message


def test_a_refusal_never_repeats_the_value() -> None:
    with pytest.raises(Refused) as exc:
        check_header("Authorization", "Bearer s3cret\r\n")
    assert "s3cret" not in exc.value.refusal.message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abc", ("Authorization", "Bearer abc")),
        ("Api-Key:k:with:colons", ("Api-Key", "k:with:colons")),
        ("Auth:\t spaced \t", ("Auth", "spaced")),
    ],
)
def test_header_lines(line: str, expected: tuple[str, str]) -> None:
    assert parse_header_line(line) == expected


@pytest.mark.parametrize("line", ["Bearer abc", "Bad Name: v", "X-Gateway-User-Id: AB1", "A: "])
def test_bad_header_lines(line: str) -> None:
    with pytest.raises(Refused) as exc:
        parse_header_line(line)
    assert "abc" not in exc.value.refusal.message
