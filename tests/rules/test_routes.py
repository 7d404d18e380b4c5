from __future__ import annotations

import pytest

from rules.routes import Route, RouteTable, load_routes, parse_routes
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
    },
    "paradex": {
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders/batch"),
        ("DELETE", "/v1/orders/{id}"),
        ("DELETE", "/v1/orders"),
    },
}


@pytest.mark.parametrize("dialect", sorted(SPEC_ORDER_ROUTES))
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
