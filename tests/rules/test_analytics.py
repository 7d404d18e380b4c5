from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from rules.analytics import Category, CategoryTable, admit_analytics, default_table, parse_table
from rules.decisions import Reason, Refused
from rules.sessions import STATIC_IP_BLOCKED
from rules.types import IPAddress

TABLE = default_table()
REGISTERED: frozenset[IPAddress] = frozenset({IPv4Address("127.0.0.2"), IPv6Address("2001:db8::2")})
GUARDED = ("User", "Payments", "Orders", "GTT Orders", "Portfolio", "Mutual Fund", "Trade P&L")


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("/v2/user/profile", "User"),
        ("/v2/user/get-funds-and-margin", "User"),
        ("/v3/user/get-funds-and-margin", "User"),
        ("/v2/user/kill-switch", "User"),
        ("/v2/user/payments/payin", "Payments"),
        ("/v2/user/payments/payout/modes", "Payments"),
        ("/v2/order/retrieve-all", "Orders"),
        ("/v2/order/details", "Orders"),
        ("/v2/order/history", "Orders"),
        ("/v2/order/trades/get-trades-for-day", "Orders"),
        ("/v2/charges/historical-trades", "Orders"),
        ("/v2/ipos/orders", "Orders"),
        ("/v2/ipos/orders/IPO123", "Orders"),
        ("/v3/order/gtt", "GTT Orders"),
        ("/v3/order/gtt/GTT-1", "GTT Orders"),
        ("/v2/portfolio/short-term-positions", "Portfolio"),
        ("/v2/portfolio/long-term-holdings", "Portfolio"),
        ("/v3/portfolio/mtf-positions", "Portfolio"),
        ("/v2/mf/holdings", "Mutual Fund"),
        ("/v2/mf/orders/ABC", "Mutual Fund"),
        ("/v2/mf/sips", "Mutual Fund"),
        ("/v2/trade/profit-loss/data", "Trade P&L"),
        ("/v2/trade/profit-loss/charges", "Trade P&L"),
        ("/v2/charges/brokerage", "Charges"),
        ("/v2/charges/margin", "Margins"),
        ("/v2/market-quote/quotes", "Market Quote"),
        ("/v2/market-quote/ltp", "Market Quote"),
        ("/v3/market-quote/ltp", "Market Quote"),
        ("/v3/market-quote/option-greek", "Market Quote"),
        ("/v2/historical-candle/NSE_EQ|INE002A01018/day/2026-11-16", "Historical Data"),
        ("/v2/historical-candle/intraday/NSE_EQ|INE002A01018/1minute", "Historical Data"),
        ("/v3/historical-candle/NSE_EQ|INE002A01018/days/1/2026-11-16", "Historical Data"),
        ("/v2/expired-instruments/expiries", "Historical Data"),
        ("/v2/option/chain", "Option Chain"),
        ("/v2/option/contract", "Option Chain"),
        ("/v2/market/timings/2026-11-16", "Market Information"),
        ("/v2/market/holidays", "Market Information"),
        ("/v2/market/status/NSE", "Market Information"),
        ("/v2/market/pcr", "Market Information"),
        ("/v2/instruments/search", "Market Information"),
        ("/v2/fundamentals/INE002A01018/key-ratios", "Fundamentals"),
        ("/v2/news", "News"),
        ("/v2/ipos", "IPO"),
        ("/v2/ipos/IPO123", "IPO"),
        ("/v2/feed/market-data-feed/authorize", "Websocket"),
        ("/v3/feed/market-data-feed/authorize", "Websocket"),
        ("/v2/feed/portfolio-stream-feed/authorize", "Websocket"),
    ],
)
def test_upstox_paths_fall_in_their_category(path: str, category: str) -> None:
    found = TABLE.lookup(path)
    assert found is not None
    assert found.name == category
    assert found.registered_ip is (category in GUARDED)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/v2",
        "/v2/login/authorization/token",
        "/v2/logout",
        "/v2/newsletter",  # whole segments only: not /v2/news
        "/v2/users/profile",
        "/v4/market-quote/ltp",
        "/v1/account/tokens",
    ],
)
def test_unknown_paths_have_no_category(path: str) -> None:
    assert TABLE.lookup(path) is None


def test_an_empty_table_knows_nothing() -> None:
    assert CategoryTable({}).lookup("/v2/news") is None


@pytest.mark.parametrize(
    ("method", "path", "ip", "category"),
    [
        ("GET", "/v2/market-quote/ltp", "203.0.113.9", "Market Quote"),
        ("GET", "/v2/feed/market-data-feed/authorize", "203.0.113.9", "Websocket"),
        ("GET", "/v2/portfolio/long-term-holdings", "127.0.0.2", "Portfolio"),
        ("GET", "/v2/portfolio/long-term-holdings", "::ffff:127.0.0.2", "Portfolio"),
        ("GET", "/v2/user/profile", "2001:db8::2", "User"),
        ("GET", "/v2/somewhere/new", "127.0.0.2", None),
    ],
)
def test_admitted(method: str, path: str, ip: str, category: str | None) -> None:
    found = admit_analytics(method, path, client_ip=_ip(ip), registered=REGISTERED, table=TABLE)
    assert (found.name if found else None) == category


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/v2/market-quote/ltp", "/v2/portfolio/long-term-holdings"])
def test_only_get_is_allowed(method: str, path: str) -> None:
    with pytest.raises(Refused) as refused:
        admit_analytics(
            method, path, client_ip=_ip("127.0.0.2"), registered=REGISTERED, table=TABLE
        )
    assert refused.value.refusal.reason is Reason.READ_ONLY_TOKEN
    assert refused.value.refusal.status == 403
    assert "read-only" in refused.value.refusal.message
    assert method in refused.value.refusal.message


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v2/portfolio/long-term-holdings", "Portfolio"),
        ("/v2/user/payments/payin", "Payments"),
        ("/v2/somewhere/new", "outside the analytics categories"),
    ],
)
def test_account_apis_need_a_registered_ip(path: str, named: str) -> None:
    with pytest.raises(Refused) as refused:
        admit_analytics("GET", path, client_ip=_ip("127.0.0.3"), registered=REGISTERED, table=TABLE)
    refusal = refused.value.refusal
    assert refusal.reason is Reason.IP_NOT_REGISTERED
    assert refusal.status == 403
    assert refusal.message.startswith(STATIC_IP_BLOCKED)
    assert named in refusal.message
    assert "127.0.0.3" in refusal.message


def test_no_registration_means_no_account_apis() -> None:
    with pytest.raises(Refused):
        admit_analytics(
            "GET",
            "/v2/user/profile",
            client_ip=_ip("127.0.0.2"),
            registered=frozenset(),
            table=TABLE,
        )


def test_parse_table() -> None:
    table = parse_table(
        {"registered_ip": ["A"], "open": ["B"], "prefixes": {"/x": "A", "/x/y/": "B"}}
    )
    assert table.lookup("/x/z") == Category("A", True)
    assert table.lookup("/x/y/z") == Category("B", False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"open": [], "prefixes": {}}, "'registered_ip' must be a list"),
        ({"registered_ip": [], "open": "B", "prefixes": {}}, "'open' must be a list"),
        ({"registered_ip": [1], "open": [], "prefixes": {}}, "'registered_ip' must be a list"),
        ({"registered_ip": ["A"], "open": ["A"], "prefixes": {}}, "listed both ways"),
        ({"registered_ip": ["A"], "open": []}, "'prefixes' must be a table"),
        ({"registered_ip": ["A"], "open": [], "prefixes": {"/x": "C"}}, "bad prefix '/x'"),
        ({"registered_ip": ["A"], "open": [], "prefixes": {"x": "A"}}, "bad prefix 'x'"),
    ],
)
def test_parse_table_refuses_bad_data(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_table(data)


def test_every_guarded_category_is_in_the_shipped_table() -> None:
    names = {
        c.name: c.registered_ip
        for c in (TABLE.lookup(p) for p in ("/v2/user", "/v2/mf", "/v2/news", "/v2/ipos"))
        if c is not None
    }
    assert names == {"User": True, "Mutual Fund": True, "News": False, "IPO": False}


def _ip(text: str) -> IPAddress:
    return ip_address(text)
