"""Every public method of ``neo_api_client.NeoAPI`` (kotakneoapi 3.0.9), called as a user would.

Arguments follow the client's docstrings: RELIANCE-EQ on nse_cm (scrip token 2885), NIFTY
options on nse_fo.  The methods the client calls with only the consumer key in
``Authorization`` (scrip master, search, quotes, expiries, option chain, historical data) are
``public`` (SPEC §2): called with no gateway session.
"""

from __future__ import annotations

import copy
from typing import Any

from .sweep_tables import RELIANCE_BUY_LIMIT, Ctx, Expect, Row

ORDER_ID = "250327000000002"

SAME, CONVERTED, LOCAL, SKIP = Expect.SAME, Expect.CONVERTED, Expect.LOCAL, Expect.SKIP

WEBSOCKET = (
    "opens a websocket feed (Kotak's SFeed / order feed), which the gateway does not proxy: "
    "it is an HTTP gateway for the REST API (SPEC §2)"
)
REMOVED = (
    "removed from the client in 2.2.0: it raises NotImplementedError and sends nothing "
    "(its replacement, create_websocket, is a websocket)"
)
LOGIN = (
    "Kotak's TOTP login (mobile number, UCC, TOTP, MPIN) is replaced by the gateway's own "
    "login: the gateway owns sessions (SPEC §1, §5), POST /gateway/v1/session"
)


def as_limit(body: Any) -> Any:
    """A ``pt: MKT`` jData as the gateway must forward it (SPEC §6)."""
    converted = copy.deepcopy(body)
    jdata = converted["jData"]
    assert jdata["pt"] == "MKT", jdata
    jdata["pt"] = "L"
    jdata["pr"] = str(RELIANCE_BUY_LIMIT)
    return converted


def _place(api: Any, c: Ctx) -> Any:
    return api.place_order(
        exchange_segment="nse_cm",
        product="CNC",
        price="0",
        order_type="MKT",
        quantity="1",
        validity="DAY",
        trading_symbol="RELIANCE-EQ",
        transaction_type="B",
        tag="sdk",
    )


def _modify(api: Any, c: Ctx) -> Any:
    return api.modify_order(
        order_id=ORDER_ID, price="1400.00", order_type="L", quantity="2", validity="DAY"
    )


def _margin(api: Any, c: Ctx) -> Any:
    return api.margin_required(
        exchange_segment="nse_cm",
        price="1400",
        order_type="L",
        product="CNC",
        quantity="1",
        instrument_token="2885",
        transaction_type="B",
    )


def _quotes(api: Any, c: Ctx) -> Any:
    tokens = [{"instrument_token": "2885", "exchange_segment": "nse_cm"}]
    return api.quotes(instrument_tokens=tokens, quote_type="ltp")


def _row(method: str, expect: Expect, call: Any = None, **kw: Any) -> Row:
    return Row("NeoAPI", method, expect, call, **kw)


ROWS: list[Row] = [
    _row("cancel_order", SAME, lambda a, c: a.cancel_order(order_id=ORDER_ID)),
    _row("create_order_feed", SKIP, reason=WEBSOCKET),
    _row("create_websocket", SKIP, reason=WEBSOCKET),
    _row("expiries", SAME, lambda a, c: a.expiries("nse_fo", "NIFTY"), public=True),
    _row("help", LOCAL, lambda a, c: a.help("place_order")),
    _row(
        "historical_data",
        SAME,
        lambda a, c: a.historical_data("nse_cm|2885", "1d", "2026-03-01", "2026-03-27"),
        public=True,
    ),
    _row("holdings", SAME, lambda a, c: a.holdings()),
    _row("limits", SAME, lambda a, c: a.limits()),
    # The client forgets its session and sends nothing (its LogoutAPI call is commented out).
    _row("logout", LOCAL, lambda a, c: a.logout()),
    _row("margin_required", SAME, _margin),
    _row("modify_order", SAME, _modify),
    _row("option_chain", SAME, lambda a, c: a.option_chain("nse_fo", "NIFTY"), public=True),
    _row("order_history", SAME, lambda a, c: a.order_history(order_id=ORDER_ID)),
    _row("order_report", SAME, lambda a, c: a.order_report()),
    _row("place_order", CONVERTED, _place, convert=as_limit),
    _row("positions", SAME, lambda a, c: a.positions()),
    _row("quotes", SAME, _quotes, public=True),
    _row("scrip_master", SAME, lambda a, c: a.scrip_master(), public=True),
    _row("search_scrip", SAME, lambda a, c: a.search_scrip("nse_cm", "RELIANCE"), public=True),
    _row("subscribe", SKIP, reason=REMOVED),
    _row("subscribe_to_orderfeed", SKIP, reason=REMOVED),
    _row("totp_login", SKIP, reason=LOGIN),
    _row("totp_validate", SKIP, reason=LOGIN),
    _row("trade_report", SAME, lambda a, c: a.trade_report()),
    _row("un_subscribe", SKIP, reason=REMOVED),
    # GET /login/1.0/get-client-ip: Kotak's "what is my IP", forwarded with the session.
    _row("whatsmyip", SAME, lambda a, c: a.whatsmyip()),
]
