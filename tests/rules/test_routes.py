from __future__ import annotations

import pytest

from rules.analytics import default_table
from rules.decisions import Reason, Refused
from rules.routes import Access, Match, Route, RouteTable, load_routes, order_target, parse_routes
from rules.types import Action

SPEC_ORDER_ROUTES = {
    "upstox": {
        ("POST", "/v2/order/place"),
        ("POST", "/v3/order/place"),
        ("PUT", "/v2/order/modify"),
        ("PUT", "/v3/order/modify"),
        ("DELETE", "/v2/order/cancel"),
        ("DELETE", "/v3/order/cancel"),
        ("POST", "/v2/order/multi/place"),
        ("DELETE", "/v2/order/multi/cancel"),
        ("POST", "/v2/order/positions/exit"),
        ("POST", "/v3/order/gtt/place"),
        ("PUT", "/v3/order/gtt/modify"),
        ("DELETE", "/v3/order/gtt/cancel"),
    },
    "kotak": {
        ("POST", "/quick/order/rule/ms/place"),
        ("POST", "/quick/order/vr/modify"),
        ("POST", "/quick/order/cancel"),
        ("POST", "/quick/order/co/exit"),
        ("POST", "/quick/order/bo/exit"),
    },
    "paradex": {
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders/batch"),
        ("DELETE", "/v1/orders/{id}"),
        ("DELETE", "/v1/orders"),
        ("POST", "/v1/algo/orders"),
        ("DELETE", "/v1/algo/orders/{id}"),
        # docs.paradex.trade api/prod/block-trades: create, execute, cancel
        ("POST", "/v1/block-trades"),
        ("POST", "/v1/block-trades/{block_trade_id}/execute"),
        ("DELETE", "/v1/block-trades/{block_trade_id}"),
    },
}
DIALECTS = sorted(SPEC_ORDER_ROUTES)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_spec_order_route_is_in_the_shipped_table(dialect: str) -> None:
    table = load_routes(dialect)
    routes = {(r.method, r.template) for r in table.routes}
    assert SPEC_ORDER_ROUTES[dialect] <= routes
    assert all(r.dialect == dialect for r in table.routes)


TABLE = RouteTable(
    "t",
    [
        Route("t", "POST", "/v1/orders", Action.PLACE),
        Route("t", "DELETE", "/v1/orders/{id}", Action.CANCEL),
        Route("t", "PUT", "/v1/orders/{id}/legs/{leg}", Action.MODIFY),
    ],
)


@pytest.mark.parametrize(
    ("method", "path", "template", "params"),
    [
        ("POST", "/v1/orders", "/v1/orders", {}),
        ("DELETE", "/v1/orders/42", "/v1/orders/{id}", {"id": "42"}),
        ("PUT", "/v1/orders/42/legs/7", "/v1/orders/{id}/legs/{leg}", {"id": "42", "leg": "7"}),
        ("GET", "/v1/orders", None, None),  # another method of an order path
        ("PUT", "/v1/orders//legs/7", None, None),  # an empty segment never fills a parameter
        ("DELETE", "/v1/orders/42/x", None, None),  # more segments than the template
        ("PUT", "/v1/orders/42/feet/7", None, None),  # a literal segment differs
        ("POST", "/v1/positions", None, None),
    ],
)
def test_match(method: str, path: str, template: str | None, params: dict[str, str] | None) -> None:
    match = TABLE.match(method, path)
    if template is None:
        assert match is None
    else:
        assert match is not None
        assert match.route.template == template
        assert match.params == params


@pytest.mark.parametrize(
    ("path", "is_order"),
    [("/v1/orders", True), ("/v1/orders/9", True), ("/v1/positions", False), ("/v1", False)],
)
def test_is_order_path_for_any_method(path: str, is_order: bool) -> None:
    assert TABLE.is_order_path(path) is is_order


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"order": {"method": "POST"}}, "'order' must be an array"),
        ({"order": ["POST /x"]}, "bad entry"),
        ({"order": [{"method": "POST", "path": "/x"}]}, "bad entry"),
        ({"order": [{"method": "POST", "path": "/x", "action": "buy"}]}, "bad entry"),
    ],
)
def test_a_malformed_table_names_the_bad_entry(data: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_routes("t", data)


def test_an_empty_table_has_no_order_routes() -> None:
    table = parse_routes("t", {})
    assert table.routes == ()
    assert table.match("POST", "/x") is None


def test_methods_are_upper_cased() -> None:
    table = parse_routes("t", {"order": [{"method": "post", "path": "/x", "action": "place"}]})
    assert table.match("POST", "/x") is not None


# the shipped tables: public routes, fail closed ------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "path"),
    [
        ("upstox", "/v2/historical-candle/NSE_EQ%7CINE002A01018/day/2026-01-02"),
        ("upstox", "/v3/historical-candle/NSE_EQ%7CINE002A01018/days/1/2026-01-02"),
        ("upstox", "/v2/market/holidays"),
        ("upstox", "/v2/market/holidays/2026-01-26"),
        ("upstox", "/v2/market/timings/2026-01-02"),
        ("kotak", "/script-details/1.0/masterscrip/file-paths"),
        ("kotak", "/script-details/1.0/quotes/neosymbol/nse_cm|2885/ltp"),
        ("kotak", "/market-data/1.0/watchlist/expiries"),
        ("kotak", "/market-data/1.0/historical/details"),
    ],
)
def test_spec_public_routes_are_public(dialect: str, path: str) -> None:
    table = load_routes(dialect)
    assert table.access("GET", path) is Access.PUBLIC
    assert table.access("POST", path) is not Access.PUBLIC  # only the listed method
    assert table.match("GET", path) is None


@pytest.mark.parametrize(
    ("dialect", "path"),
    [
        ("upstox", "/v2/market/holidaysX"),  # prefixes match whole segments
        ("upstox", "/v2/market/status/NSE"),
        ("upstox", "/v2/order/retrieve-all"),
        ("upstox", "/v2/user/profile"),
        ("kotak", "/quick/user/orders"),
        ("kotak", "/login/1.0/get-client-ip"),
        ("paradex", "/v1/markets"),
    ],
)
def test_other_reads_need_authentication(dialect: str, path: str) -> None:
    assert load_routes(dialect).access("GET", path) is Access.AUTHENTICATED


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_public_route_is_an_order_route_or_reads_an_account(dialect: str) -> None:
    table = load_routes(dialect)
    for method, prefix in table.public:
        assert method == "GET"
        assert not any(p.startswith(prefix) or prefix.startswith(p) for p in table.order_prefixes)
        assert not any(r.template.startswith(prefix) for r in table.routes)
        if dialect == "upstox":  # the analytics table says which upstox paths are account data
            category = default_table().lookup(prefix)
            assert category is not None and not category.registered_ip, prefix


@pytest.mark.parametrize(
    ("dialect", "method", "path"),
    [
        ("upstox", "POST", "/v2/order/unknown"),
        ("upstox", "PUT", "/v3/order/gtt/unknown"),
        ("upstox", "DELETE", "/v2/order/trades"),
        ("upstox", "PATCH", "/v2/order/modify"),
        ("kotak", "POST", "/quick/order/xx/place"),
        ("kotak", "POST", "/quick/order"),
        ("paradex", "POST", "/v1/orders/unknown"),
        ("paradex", "PATCH", "/v1/orders/abc"),
        ("paradex", "POST", "/v1/algo/orders/abc/amend"),
        ("paradex", "PUT", "/v1/block-trades/b1"),
    ],
)
def test_an_unknown_write_under_an_order_prefix_is_closed(
    dialect: str, method: str, path: str
) -> None:
    table = load_routes(dialect)
    assert table.match(method, path) is None
    assert table.access(method, path) is Access.CLOSED


@pytest.mark.parametrize(
    ("dialect", "method", "path"),
    [
        ("kotak", "POST", "/quick/order/history"),  # the official client's order history
        ("kotak", "POST", "/quick/user/check-margin"),  # not under an order prefix
        ("upstox", "GET", "/v2/order/details"),
        ("upstox", "POST", "/v2/charges/brokerage"),
        ("paradex", "GET", "/v1/orders/abc"),
        ("paradex", "HEAD", "/v1/algo/orders"),
        ("paradex", "POST", "/v1/orders-history"),  # "/v1/orders" is a whole-segment prefix
    ],
)
def test_reads_under_and_writes_beside_order_prefixes_pass(
    dialect: str, method: str, path: str
) -> None:
    assert load_routes(dialect).access(method, path) is Access.AUTHENTICATED


# tables that would let a public route reach an order or an account -----------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"public": [{"method": "GET", "prefix": "/v2/"}], "order_prefixes": ["/v2/order/"]},
        {"public": [{"method": "GET", "prefix": "/v2/order/x"}], "order_prefixes": ["/v2/order"]},
        {
            "public": [{"method": "GET", "prefix": "/q"}],
            "order": [{"method": "POST", "path": "/q/place", "action": "place"}],
        },
        {
            "public": [{"method": "POST", "prefix": "/q/history"}],
            "read": [{"method": "POST", "path": "/q/history"}],
        },
    ],
)
def test_a_public_prefix_covering_an_order_route_or_read_is_refused(
    data: dict[str, object],
) -> None:
    with pytest.raises(ValueError, match=r"public .* covers"):
        parse_routes("t", data)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"read": {"method": "POST"}}, "'read' must be an array"),
        ({"public": [{"method": "GET"}]}, "missing 'prefix'"),
        ({"read": [["POST", "/x"]]}, "bad entry"),
        ({"order_prefixes": "/x/"}, "order_prefixes must be a list of strings"),
        (
            {"order": [{"method": "POST", "path": "/x", "action": "place", "query": "a"}]},
            "query must be a list of strings",
        ),
    ],
)
def test_malformed_rows_name_what_is_wrong(data: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_routes("t", data)


def test_order_rows_carry_their_body_shape_and_query() -> None:
    table = parse_routes(
        "t",
        {
            "order": [
                {"method": "DELETE", "path": "/c", "action": "cancel", "query": ["id"]},
                {"method": "POST", "path": "/p", "action": "place", "body": "t.place"},
            ]
        },
    )
    cancel, place = table.routes
    assert (cancel.body, cancel.query) == ("none", frozenset({"id"}))
    assert (place.body, place.query) == ("t.place", frozenset())


def test_a_row_names_its_upstream_host_or_none() -> None:
    table = parse_routes(
        "t",
        {
            "order": [
                {"method": "POST", "path": "/p", "action": "place", "host": "orders"},
                {"method": "POST", "path": "/m", "action": "place"},
            ]
        },
    )
    assert [r.host for r in table.routes] == ["orders", None]


def test_upstox_place_modify_cancel_go_to_the_orders_host_and_nothing_else() -> None:
    # SPEC §14: the HFT host serves place, modify and cancel; multi-order and GTT stay.
    hosted = {(r.method, r.template) for r in load_routes("upstox").routes if r.host == "orders"}
    assert hosted == {
        ("POST", "/v2/order/place"),
        ("POST", "/v3/order/place"),
        ("PUT", "/v2/order/modify"),
        ("PUT", "/v3/order/modify"),
        ("DELETE", "/v2/order/cancel"),
        ("DELETE", "/v3/order/cancel"),
    }
    assert all(r.host is None for d in ("kotak", "paradex") for r in load_routes(d).routes)


# the upstream target (SPEC §10) ---------------------------------------------------------------

CANCEL = Route("t", "DELETE", "/v2/order/cancel", Action.CANCEL, query=frozenset({"order_id"}))
BY_ID = Route("t", "DELETE", "/v1/orders/{id}", Action.CANCEL)
MULTI = Route("t", "DELETE", "/m", Action.CANCEL, query=frozenset({"tag", "segment"}))


@pytest.mark.parametrize(
    ("match", "raw_query", "target", "query"),
    [
        (Match(CANCEL, {}), "order_id=260101000001", "/v2/order/cancel?order_id=260101000001",
         {"order_id": "260101000001"}),
        (Match(BY_ID, {"id": "abc"}), "", "/v1/orders/abc", {}),
        # a segment is re-quoted from its decoded value: nothing but the id can ride along
        (Match(BY_ID, {"id": "a/b?c"}), "", "/v1/orders/a%2Fb%3Fc", {}),
        (Match(MULTI, {}), "segment=NSE_EQ&tag=a%20b", "/m?segment=NSE_EQ&tag=a%20b",
         {"segment": "NSE_EQ", "tag": "a b"}),
        (Match(MULTI, {}), "tag=", "/m?tag=", {"tag": ""}),
    ],
)  # fmt: skip
def test_the_target_is_rebuilt_from_the_route(
    match: Match, raw_query: str, target: str, query: dict[str, str]
) -> None:
    assert order_target(match, raw_query) == (target, query)


@pytest.mark.parametrize(
    ("match", "raw_query", "body_fields", "says"),
    [
        (Match(CANCEL, {}), "order_id=1&order_id=2", (), "'order_id' is given twice"),
        (Match(BY_ID, {"id": "abc"}), "id=other", (), "given in both the path and the query"),
        (Match(Route("t", "PUT", "/v2/order/modify", Action.MODIFY), {}), "order_id=2",
         ("order_id", "quantity"), "given in both the body and the query"),
        (Match(CANCEL, {}), "order_id=1&x=2", (), r"unknown query parameter 'x'.*takes order_id"),
        (Match(BY_ID, {"id": "abc"}), "market=X", (), "takes no query parameters"),
        (Match(CANCEL, {}), "order_id", (), "the query string is malformed"),
        (Match(CANCEL, {}), "order_id=%ff", (), "the query string is malformed"),
    ],
)  # fmt: skip
def test_a_query_that_could_name_another_order_is_refused(
    match: Match, raw_query: str, body_fields: tuple[str, ...], says: str
) -> None:
    with pytest.raises(Refused, match=says) as refused:
        order_target(match, raw_query, body_fields=body_fields)
    assert refused.value.refusal.reason is Reason.BAD_REQUEST
