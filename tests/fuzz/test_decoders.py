"""Every decoder, fed valid bodies and hostile mutations of them: it returns or raises Refused.

Whatever a decoder accepts must survive the way out: the dialect re-encodes it for the upstream
and that encoding decodes back to the same fields (no value the broker would read differently).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from gateway.codec import decode_json, encode_json, unencodable
from gateway.dialects.base import Decoded, Dialect
from gateway.dialects.kotak import KotakDialect, parse_jdata
from gateway.dialects.paradex import ParadexDialect
from gateway.dialects.upstox import UpstoxDialect
from rules.clientip import parse_forwarded, parse_x_forwarded_for
from rules.decisions import Refuse, Refused
from rules.registry import parse_ip_update
from rules.routes import Route, load_routes
from rules.tokens import parse_token_request
from rules.upstream_auth import parse_upstream_auth

from . import strategies as s

T = TypeVar("T")
UPSTOX = UpstoxDialect(load_routes("upstox"))
KOTAK = KotakDialect(load_routes("kotak"))
PARADEX = ParadexDialect(load_routes("paradex"))


def route(dialect: Dialect, method: str, path: str) -> Route:
    match = dialect.match(method, path)
    assert match is not None, (method, path)
    return match.route


UPSTOX_ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/v2/order/place", s.upstox_place()),
    ("POST", "/v3/order/place", s.upstox_place(v3=True)),
    ("PUT", "/v2/order/modify", s.upstox_modify()),
    ("PUT", "/v3/order/modify", s.upstox_modify()),
    ("POST", "/v2/order/multi/place", st.lists(s.upstox_place(multi=True), min_size=1, max_size=3)),
    ("POST", "/v3/order/gtt/place", st.dictionaries(st.text(max_size=5), s.junk, max_size=3)),
]
PARADEX_ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/v1/orders", s.paradex_order()),
    ("POST", "/v1/orders/batch", st.lists(s.paradex_order(), min_size=1, max_size=3)),
    ("PUT", "/v1/orders/abc", s.paradex_order()),
    ("DELETE", "/v1/orders/batch", st.just({"order_ids": ["a", "b"]})),
]
KOTAK_ROUTES: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("/quick/order/rule/ms/place", s.kotak_place()),
    ("/quick/order/vr/modify", s.kotak_place().map(lambda d: {**d, "no": "1", "vd": "DAY"})),
    ("/quick/order/cancel", s.kotak_cancel()),
]


def attempt(call: Callable[[], T]) -> T | Refuse:
    """The call's result, or the refusal it raised (any other exception escapes the test)."""
    try:
        return call()
    except Refused as refused:
        return refused.refusal


def is_4xx(result: object) -> bool:
    """A refusal a client is told about: a 4xx whose envelope can be written."""
    assert isinstance(result, Refuse)
    encode_json({"message": result.message})
    return 400 <= result.status < 500


def decodes_or_refuses(dialect: Dialect, method: str, path: str, body: bytes) -> Decoded | None:
    match = dialect.match(method, path)
    assert match is not None
    query = {"order_id": "1", **match.params}
    decoded = attempt(lambda: dialect.decode(match.route, body, query))
    if isinstance(decoded, Refuse):
        assert is_4xx(decoded), decoded
        encode_json(dialect.envelope(decoded))
        return None
    return decoded


def as_decoded(doc: Any) -> Any:
    """``doc`` as the codec hands it to a rules parser (which never sees what it refused)."""
    decoded = attempt(lambda: decode_json(s.json_body(doc)))
    assume(not isinstance(decoded, Refuse))
    return decoded


def same_on_the_way_out(dialect: Dialect, decoded: Decoded) -> None:
    """What the upstream would get decodes to the fields the rules saw."""
    out, content_type = dialect.encode(decoded)
    if not out:
        return
    if content_type == "application/json":
        again = decode_json(out)
        expected: Any
        if decoded.many:
            expected = [d.fields for d in decoded.docs]
        elif decoded.body is not None:
            expected = decoded.body
        else:
            expected = decoded.docs[0].fields
        assert again == expected
    else:
        assert parse_jdata(out) == decoded.docs[0].fields


@given(st.binary(max_size=200) | st.builds(s.json_body, s.junk))
@example(b'{"tag": "\\ud800"}')
@example(b"1e99999999999999999999999")
@example(b"1" * 5000)
def test_decode_json_returns_or_refuses(body: bytes) -> None:
    value = attempt(lambda: decode_json(body))
    if isinstance(value, Refuse):
        assert is_4xx(value) and value.status == 400
        return
    assert decode_json(encode_json(value)) == value


@pytest.mark.parametrize(
    ("method", "path", "valid"), UPSTOX_ROUTES, ids=[f"{m} {p}" for m, p, _ in UPSTOX_ROUTES]
)
@given(data=st.data())
def test_upstox_decoders(method: str, path: str, valid: st.SearchStrategy[Any], data: Any) -> None:
    body = data.draw(s.mutated(valid).map(s.json_body).flatmap(s.hostile_bytes))
    decoded = decodes_or_refuses(UPSTOX, method, path, body)
    if decoded is not None:
        same_on_the_way_out(UPSTOX, decoded)


@pytest.mark.parametrize(
    ("method", "path", "valid"), PARADEX_ROUTES, ids=[f"{m} {p}" for m, p, _ in PARADEX_ROUTES]
)
@given(data=st.data())
def test_paradex_decoders(method: str, path: str, valid: st.SearchStrategy[Any], data: Any) -> None:
    body = data.draw(s.mutated(valid).map(s.json_body).flatmap(s.hostile_bytes))
    decoded = decodes_or_refuses(PARADEX, method, path, body)
    if decoded is not None:
        same_on_the_way_out(PARADEX, decoded)


@pytest.mark.parametrize(("path", "valid"), KOTAK_ROUTES, ids=[p for p, _ in KOTAK_ROUTES])
@given(data=st.data())
def test_kotak_decoders(path: str, valid: st.SearchStrategy[Any], data: Any) -> None:
    form = st.one_of(
        s.mutated(valid).map(s.jdata_form),
        st.binary(max_size=60),
        st.builds(lambda a, b: f"{a}={b}".encode(), st.text(max_size=8), st.text(max_size=8)),
    )
    body = data.draw(form.flatmap(s.hostile_bytes))
    decoded = decodes_or_refuses(KOTAK, "POST", path, body)
    if decoded is not None:
        same_on_the_way_out(KOTAK, decoded)


ip_text = st.one_of(
    st.ip_addresses().map(str), s.odd_text, st.sampled_from(["1.2.3.4", "::1", "010.1.1.1"])
)


@given(
    st.one_of(
        s.junk,
        s.mutated(
            st.fixed_dictionaries(
                {"primary_ip": ip_text}, optional={"secondary_ip": ip_text | s.junk}
            )
        ),
    ),
    st.booleans(),
)
def test_parse_ip_update_returns_or_refuses(body: Any, public_only: bool) -> None:
    body = as_decoded(body)
    update = attempt(lambda: parse_ip_update(body, public_only=public_only))
    if isinstance(update, Refuse):
        assert is_4xx(update)
        return
    assert update.primary != update.secondary


@given(
    st.one_of(
        s.junk,
        s.mutated(
            st.fixed_dictionaries(
                {
                    "name": s.odd_text,
                    "token_type": st.sampled_from(["jwt", "api_key"]),
                    "expiry_duration": st.integers(0, 10**8),
                },
                optional={
                    "allowed_cidrs": st.lists(
                        st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(v=4), st.integers(0, 33))
                        | s.odd_text
                    )
                },
            )
        ),
    )
)
def test_parse_token_request_returns_or_refuses(body: Any) -> None:
    body = as_decoded(body)
    request = attempt(lambda: parse_token_request(body))
    if isinstance(request, Refuse):
        assert is_4xx(request)
        return
    assert request.name.strip() and request.kind in ("jwt", "api_key")


@given(
    st.one_of(
        s.junk,
        s.mutated(
            st.fixed_dictionaries({"headers": st.dictionaries(s.odd_text, s.odd_text, max_size=3)})
        ),
    )
)
def test_parse_upstream_auth_returns_or_refuses(body: Any) -> None:
    body = as_decoded(body)
    headers = attempt(lambda: parse_upstream_auth(body))
    if isinstance(headers, Refuse):
        assert is_4xx(headers)
        return
    for name, value in headers.items():
        (name + value).encode("latin-1")  # what an HTTP client can write as a header


@given(st.lists(st.one_of(s.odd_text, st.ip_addresses().map(str)), max_size=3))
def test_forwarded_headers_parse_or_refuse(values: list[str]) -> None:
    assume(not any(unencodable(value) for value in values))  # the edge refused those
    for parse in (parse_forwarded, parse_x_forwarded_for):
        hops = attempt(lambda: parse(values))  # noqa: B023 (called at once)
        assert isinstance(hops, tuple) or is_4xx(hops)
