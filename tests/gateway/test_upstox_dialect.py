"""The upstox dialect's body shapes, as upstox-python-sdk 2.30 sends them, and the registry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.app import upstream_bases
from gateway.dialects import REGISTRY, create_dialects
from gateway.dialects.upstox import UpstoxDialect
from rules.decisions import Reason, Refused
from rules.routes import Match, Route, load_routes, parse_routes
from rules.types import Action, Side

from ..harness import RELIANCE, market_order

DIALECT = UpstoxDialect(load_routes("upstox"))


def match(method: str, path: str, **params: str) -> Match:
    found = DIALECT.match(method, path)
    assert found is not None
    return Match(found.route, {**found.params, **params})


def route(method: str, path: str) -> Route:
    return match(method, path).route


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# the registry and the shapes ----------------------------------------------------------------


def test_every_shipped_route_has_a_decoder_in_its_registered_dialect() -> None:
    dialects = create_dialects()
    assert sorted(dialects) == sorted(REGISTRY) == ["kotak", "paradex", "upstox"]
    for name, dialect in dialects.items():
        assert dialect.name == name
        assert all(route.body in dialect.decoders for route in dialect.routes.routes)


def test_a_route_whose_body_shape_has_no_decoder_stops_the_dialect_being_built() -> None:
    table = parse_routes(
        "upstox", {"order": [{"method": "POST", "path": "/v2/order/x", "action": "place",
                              "body": "upstox.nothing"}]},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"POST /v2/order/x: no decoder .*'upstox.nothing'"):
        UpstoxDialect(table)


def test_the_table_picks_the_decoder_not_the_path() -> None:
    # a route added to the table under a path no decoder ever heard of is decoded by its shape
    table = parse_routes(
        "upstox", {"order": [{"method": "POST", "path": "/v9/order/new", "action": "place",
                              "body": "upstox.place"}]},
    )  # fmt: skip
    new = table.routes[0]
    decoded = UpstoxDialect(table).decode(new, body(market_order()), {})
    assert decoded.docs[0].intent.instrument_key == RELIANCE


# cancels: the SDK's {} body (SPEC §2) --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("DELETE", "/v2/order/cancel", {"order_id": "1"}),
        ("DELETE", "/v3/order/cancel", {"order_id": "1"}),
        ("DELETE", "/v2/order/multi/cancel", {}),
    ],
)
@pytest.mark.parametrize("sent", [b"", b"{}", b" { } "])
def test_an_empty_json_object_counts_as_no_body(
    method: str, path: str, query: dict[str, str], sent: bytes
) -> None:
    decoded = DIALECT.decode(route(method, path), sent, query)
    assert DIALECT.encode(decoded) == (b"", "")


@pytest.mark.parametrize("sent", [b'{"order_id": "2"}', b"[]", b"null", b"0"])
def test_a_body_that_is_not_empty_json_is_refused_on_a_cancel(sent: bytes) -> None:
    with pytest.raises(Refused, match="takes no request body") as refused:
        DIALECT.decode(route("DELETE", "/v2/order/cancel"), sent, {"order_id": "1"})
    assert refused.value.refusal.reason is Reason.BAD_REQUEST


def test_a_cancel_needs_its_order_id() -> None:
    with pytest.raises(Refused, match="order_id is required"):
        DIALECT.decode(route("DELETE", "/v2/order/cancel"), b"{}", {})


# market_protection (SPEC §2) ----------------------------------------------------------------

MODIFY = {"order_id": "1", "order_type": "LIMIT", "price": 10, "quantity": 1, "validity": "DAY"}
GTT = {
    "type": "SINGLE",
    "quantity": 1,
    "product": "D",
    "instrument_token": RELIANCE,
    "transaction_type": "BUY",
    "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": 10}],
}


def _with_protection(path: str, value: object) -> tuple[str, str, bytes]:
    if path == "/v3/order/place":
        return "POST", path, body(market_order(market_protection=value))
    if path == "/v2/order/multi/place":
        return "POST", path, body([market_order(correlation_id="c1", market_protection=value)])
    if path.endswith("/order/modify"):
        return "PUT", path, body({**MODIFY, "market_protection": value})
    rules = [{**GTT["rules"][0], "market_protection": value}]  # type: ignore[index]
    if path.endswith("place"):
        return "POST", path, body({**GTT, "rules": rules})
    return "PUT", path, body({**GTT, "rules": rules, "gtt_order_id": "GTT-1"})


WHERE = [
    "/v3/order/place",
    "/v2/order/multi/place",
    "/v2/order/modify",
    "/v3/order/modify",
    "/v3/order/gtt/place",
    "/v3/order/gtt/modify",
]


@pytest.mark.parametrize("path", WHERE)
@pytest.mark.parametrize("value", [0, 1, 25, -1])
def test_market_protection_is_accepted_and_forwarded_as_sent(path: str, value: int) -> None:
    method, path, sent = _with_protection(path, value)
    decoded = DIALECT.decode(route(method, path), sent, {})
    encoded, _ = DIALECT.encode(decoded)
    assert json.loads(encoded) == json.loads(sent)


@pytest.mark.parametrize("path", WHERE)
@pytest.mark.parametrize("value", [26, -2, "5", 1.5, True, None])
def test_market_protection_outside_0_to_25_or_minus_1_is_refused(path: str, value: object) -> None:
    method, path, sent = _with_protection(path, value)
    with pytest.raises(Refused, match="market_protection must be an integer from 0 to 25, or -1"):
        DIALECT.decode(route(method, path), sent, {})


def test_v2_place_does_not_take_market_protection() -> None:
    # upstox-python-sdk's PlaceOrderRequest (v2) has no such field; v3 does
    with pytest.raises(Refused, match="unknown field 'market_protection'"):
        DIALECT.decode(
            route("POST", "/v2/order/place"), body(market_order(market_protection=0)), {}
        )


def test_gtt_rules_must_be_objects() -> None:
    with pytest.raises(Refused, match="rules must be a list of JSON objects"):
        DIALECT.decode(route("POST", "/v3/order/gtt/place"), body({**GTT, "rules": [1]}), {})
    without = DIALECT.decode(
        route("DELETE", "/v3/order/gtt/cancel"), body({"gtt_order_id": "g"}), {}
    )
    assert without.docs[0].fields == {"gtt_order_id": "g"}


def test_a_gtt_placement_names_its_instrument_and_side_for_the_order_book() -> None:
    decoded = DIALECT.decode(route("POST", "/v3/order/gtt/place"), body(GTT), {})

    intent = decoded.docs[0].intent
    assert (intent.action, intent.instrument_key, intent.side) == (
        Action.PLACE,
        RELIANCE,
        Side.BUY,
    )
    assert json.loads(DIALECT.encode(decoded)[0]) == GTT  # forwarded as sent


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("PUT", "/v3/order/gtt/modify", Action.MODIFY),
        ("DELETE", "/v3/order/gtt/cancel", Action.CANCEL),
    ],
)
def test_a_gtt_modify_or_cancel_names_the_gtt_id_checked_for_ownership(
    method: str, path: str, action: Action
) -> None:
    sent = (
        {**GTT, "gtt_order_id": "GTT-C1"} if action is Action.MODIFY else {"gtt_order_id": "GTT-C1"}
    )
    decoded = DIALECT.decode(route(method, path), body(sent), {})

    assert (decoded.docs[0].intent.action, decoded.docs[0].intent.order_id) == (action, "GTT-C1")
    assert json.loads(DIALECT.encode(decoded)[0]) == sent
    for missing in ({}, {"gtt_order_id": ""}, {"gtt_order_id": 7}):
        with pytest.raises(Refused, match="gtt_order_id is required"):
            DIALECT.decode(route(method, path), body(missing), {})


def test_the_gtt_ids_of_a_placement_are_read_from_its_answer() -> None:
    answer = {"status": "success", "data": {"gtt_order_ids": ["GTT-C9"]}}

    assert DIALECT.order_ids(route("POST", "/v3/order/gtt/place"), body(answer)) == ["GTT-C9"]


# the rebuilt target (SPEC §10) --------------------------------------------------------------


def test_a_cancel_target_carries_only_its_one_order_id() -> None:
    decoded = DIALECT.decode_request(
        match("DELETE", "/v2/order/cancel"), b"{}", "/v2/order/cancel?order_id=260101%20A"
    )
    assert decoded.target == "/v2/order/cancel?order_id=260101%20A"
    assert decoded.docs[0].intent.order_id == "260101 A"


@pytest.mark.parametrize(
    ("method", "path", "sent", "target", "says"),
    [
        ("DELETE", "/v2/order/cancel", b"", "/v2/order/cancel?order_id=1&order_id=2",
         "given twice"),
        ("DELETE", "/v3/order/cancel", b"", "/v3/order/cancel?order_id=1&tag=x", "unknown query"),
        ("PUT", "/v2/order/modify", body(MODIFY), "/v2/order/modify?order_id=2",
         "'order_id' is given in both the body and the query string"),
        ("POST", "/v2/order/place", body(market_order()), "/v2/order/place?quantity=9",
         "'quantity' is given in both the body"),
    ],
)  # fmt: skip
def test_a_query_naming_a_second_order_is_refused(
    method: str, path: str, sent: bytes, target: str, says: str
) -> None:
    with pytest.raises(Refused, match=says) as refused:
        DIALECT.decode_request(match(method, path), sent, target)
    assert refused.value.refusal.reason is Reason.BAD_REQUEST


def test_positions_exit_keeps_its_tag_and_segment() -> None:
    decoded = DIALECT.decode_request(
        match("POST", "/v2/order/positions/exit"),
        b"",
        "/v2/order/positions/exit?segment=NSE_EQ&tag=exit%2F1",
    )
    assert decoded.target == "/v2/order/positions/exit?segment=NSE_EQ&tag=exit%2F1"
    assert decoded.body is None and decoded.docs == []
    assert route("POST", "/v2/order/positions/exit").action is Action.PLACE


# upstream URLs against the registry (SPEC §13) ----------------------------------------------


def test_every_registered_dialect_gets_its_configured_upstream() -> None:
    urls = {"upstox": "http://u", "kotak": None, "paradex": "http://p"}
    assert upstream_bases(urls, ["upstox", "kotak", "paradex"], None) == {
        "upstox": "http://u",
        "kotak": "http://u",  # unset: the first configured one
        "paradex": "http://p",
    }
    with_paper = upstream_bases(urls, ["kotak", "upstox", "paradex"], "http://paper")
    assert with_paper["kotak"] == "http://paper"  # unset: the embedded paper broker


@pytest.mark.parametrize(
    ("urls", "says"),
    [
        ({"upstox": None, "kotak": None}, "dialect paradex has no upstream.paradex"),
        (
            {"upstox": None, "kotak": None, "paradex": None, "zerodha": "http://z"},
            "upstream.zerodha names no dialect",
        ),
    ],
)
def test_upstream_keys_must_match_the_registry(urls: dict[str, str | None], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        upstream_bases(urls, sorted(REGISTRY), None)
