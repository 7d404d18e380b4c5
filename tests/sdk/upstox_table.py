"""Every public method of ``upstox_client`` (upstox-python-sdk 2.30), called as a user would.

Arguments are those of Upstox's API docs and the SDK's docstrings: RELIANCE on NSE, Nifty
options, API version "2.0" where the method asks for one.  Order rows use the SDK's own request
models; MARKET placements are ``converted`` (SPEC §6).  ``market_protection`` is sent where the
SDK's models carry it (v2 and v3 modify, v3 place, multi-order): SPEC §2 accepts it there.
"""

from __future__ import annotations

import copy
from typing import Any

import upstox_client as u

from .sweep_tables import RELIANCE_BUY_LIMIT, A, Ctx, Expect, Row, call

RELIANCE = "NSE_EQ|INE002A01018"
ISIN = "INE002A01018"
NIFTY = "NSE_INDEX|Nifty 50"
NIFTY_OPTION = "NSE_FO|43885"
EXPIRED_OPTION = "NSE_FO|54452|24-04-2025"
V = "2.0"
TODAY = "2026-03-27"
MONTH_START = "2026-03-01"
EXPIRY = "2026-04-30"
ORDER_ID = "250327000000001"
GTT_ID = "GTT-C25270300000001"

SAME, CONVERTED, GATEWAY, LOCAL, SKIP = (
    Expect.SAME,
    Expect.CONVERTED,
    Expect.GATEWAY,
    Expect.LOCAL,
    Expect.SKIP,
)


def as_limit(body: Any) -> Any:
    """A MARKET order body (or multi-order list) as the gateway must forward it."""
    orders = copy.deepcopy(body)
    for order in orders if isinstance(orders, list) else [orders]:
        assert order["order_type"] == "MARKET", order
        order["order_type"] = "LIMIT"
        order["price"] = float(RELIANCE_BUY_LIMIT)
    return orders


def _order(**fields: Any) -> dict[str, Any]:
    return {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "price": 0.0,
        "tag": "sdk",
        "instrument_token": RELIANCE,
        "order_type": "MARKET",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0.0,
        "is_amo": False,
        **fields,
    }


def _modify(**fields: Any) -> dict[str, Any]:
    return {
        "quantity": 2,
        "validity": "DAY",
        "price": 1400.0,
        "order_id": ORDER_ID,
        "order_type": "LIMIT",
        "disclosed_quantity": 0,
        "trigger_price": 0.0,
        **fields,
    }


def _gtt_rule() -> Any:
    return u.GttRule(strategy="ENTRY", trigger_type="ABOVE", trigger_price=1450.0)


def row(owner: str, method: str, expect: Expect, call: Any = None, **kw: Any) -> Row:
    return Row(owner, method, expect, call, **kw)


def _token(api: Any, c: Ctx) -> Any:
    return api.token(
        V,
        code="sdk-code",
        client_id=c.api_key,
        client_secret=c.api_secret,
        redirect_uri="http://127.0.0.1/callback",
        grant_type="authorization_code",
    )


AUTHORIZE = (
    "opens Upstox's login dialog in a browser (a 302 to Upstox's login page); the gateway's "
    "login is the token route, which takes the API app's key and secret"
)
INDIE_TOKEN = (
    "asks Upstox to push an access token the user approves in Upstox's app; the gateway issues "
    "its own sessions (SPEC §5), so there is no Upstox token to request"
)
MARGIN = u.MarginRequest(
    instruments=[
        u.Instrument(
            instrument_key=RELIANCE, quantity=1, product="D", transaction_type="BUY", price=1400.0
        )
    ]
)
IPO_BID = u.IpoApplyRequest(
    id="IPO-1",
    upi="trader@upi",
    category="IND",
    bids=[{"quantity": 10, "price": 100, "cut_off": False}],
)
GTT_PLACE = u.GttPlaceOrderRequest(
    type="SINGLE",
    quantity=1,
    product="D",
    rules=[_gtt_rule()],
    instrument_token=RELIANCE,
    transaction_type="BUY",
)
GTT_MODIFY = u.GttModifyOrderRequest(
    type="SINGLE", quantity=1, rules=[_gtt_rule()], gtt_order_id=GTT_ID
)
CONVERT = u.ConvertPositionRequest(
    instrument_token=RELIANCE, new_product="D", old_product="I", transaction_type="BUY", quantity=1
)


ROWS: list[Row] = [
    call("ChargeApi", "get_brokerage", SAME, A(RELIANCE, 1, "D", "BUY", 1400.0, V)),
    call("ChargeApi", "post_margin", SAME, A(MARGIN)),
    call("ExpiredInstrumentApi", "get_expired_future_contracts", SAME, A(NIFTY, "2025-11-27")),
    call(
        "ExpiredInstrumentApi",
        "get_expired_historical_candle_data",
        SAME,
        A(EXPIRED_OPTION, "day", "2025-04-24", "2025-04-01"),
    ),
    call("ExpiredInstrumentApi", "get_expired_option_contracts", SAME, A(NIFTY, "2025-11-27")),
    call("ExpiredInstrumentApi", "get_expiries", SAME, A(NIFTY)),
    call("FundamentalsApi", "get_balance_sheet", SAME, A(ISIN, type="annual")),
    call("FundamentalsApi", "get_cash_flow", SAME, A(ISIN)),
    call("FundamentalsApi", "get_company_profile", SAME, A(ISIN)),
    call("FundamentalsApi", "get_competitors", SAME, A(RELIANCE)),
    call("FundamentalsApi", "get_corporate_actions", SAME, A(ISIN)),
    call("FundamentalsApi", "get_income_statement", SAME, A(ISIN, time_period="quarterly")),
    call("FundamentalsApi", "get_key_ratios", SAME, A(ISIN)),
    call("FundamentalsApi", "get_share_holdings", SAME, A(ISIN)),
    # HistoryApi, HistoryV3Api, holidays and timings: public (SPEC §2)
    call(
        "HistoryApi", "get_historical_candle_data", SAME, A(RELIANCE, "day", TODAY, V), public=True
    ),
    call(
        "HistoryApi",
        "get_historical_candle_data1",
        SAME,
        A(RELIANCE, "day", TODAY, MONTH_START, V),
        public=True,
    ),
    call("HistoryApi", "get_intra_day_candle_data", SAME, A(RELIANCE, "30minute", V), public=True),
    call(
        "HistoryV3Api",
        "get_historical_candle_data",
        SAME,
        A(RELIANCE, "days", "1", TODAY),
        public=True,
    ),
    call(
        "HistoryV3Api",
        "get_historical_candle_data1",
        SAME,
        A(RELIANCE, "days", "1", TODAY, MONTH_START),
        public=True,
    ),
    call(
        "HistoryV3Api", "get_intra_day_candle_data", SAME, A(RELIANCE, "minutes", "5"), public=True
    ),
    call("InstrumentsApi", "search_instrument", SAME, A("reliance", exchanges="NSE", records=10)),
    call("IpoApi", "apply_for_ipo", SAME, A(IPO_BID)),
    call("IpoApi", "cancel_ipo_order", SAME, A("IPO-ORDER-1")),
    call("IpoApi", "get_ipo_details", SAME, A("IPO-1")),
    call("IpoApi", "get_ipo_listing", SAME, A(status="open")),
    call("IpoApi", "get_ipo_order_by_id", SAME, A("IPO-ORDER-1")),
    call("IpoApi", "get_ipo_orders", SAME, A()),
    # LoginApi: the token route is the gateway's login (SPEC §5)
    row("LoginApi", "authorize", SKIP, reason=AUTHORIZE),
    row("LoginApi", "init_token_request_for_indie_user", SKIP, reason=INDIE_TOKEN),
    # logout ends the gateway session that sent it (the next call with it is refused)
    row(
        "LoginApi",
        "logout",
        GATEWAY,
        lambda a, c: a.logout(V),
        check=lambda r, c: r.status == "success" and r.data is True,
    ),
    row(
        "LoginApi",
        "token",
        GATEWAY,
        _token,
        check=lambda r, c: r.user_id == c.user_id and bool(r.access_token),
    ),
    call("MarketApi", "get_change_oi_data", SAME, A(NIFTY, EXPIRY, TODAY, "5minute")),
    call("MarketApi", "get_dii_data", SAME, A("cash", "daily")),
    call("MarketApi", "get_fii_data", SAME, A("cash", "daily")),
    call("MarketApi", "get_max_pain_data", SAME, A(NIFTY, EXPIRY, TODAY, "5minute")),
    call("MarketApi", "get_oi_data", SAME, A(NIFTY, EXPIRY, TODAY)),
    call("MarketApi", "get_pcr_data", SAME, A(NIFTY, EXPIRY, TODAY, "5minute")),
    call("MarketApi", "get_smartlist_futures", SAME, A(page_number=1, page_size=20)),
    call("MarketApi", "get_smartlist_mtf", SAME, A()),
    call("MarketApi", "get_smartlist_options", SAME, A()),
    call("MarketHolidaysAndTimingsApi", "get_exchange_timings", SAME, A(TODAY), public=True),
    call("MarketHolidaysAndTimingsApi", "get_holiday", SAME, A(TODAY), public=True),
    call("MarketHolidaysAndTimingsApi", "get_holidays", SAME, A(), public=True),
    call("MarketHolidaysAndTimingsApi", "get_market_status", SAME, A("NSE")),
    call("MarketQuoteApi", "get_full_market_quote", SAME, A(RELIANCE, V)),
    call("MarketQuoteApi", "get_market_quote_ohlc", SAME, A(RELIANCE, "1d", V)),
    call("MarketQuoteApi", "ltp", SAME, A(RELIANCE, V)),
    call("MarketQuoteV3Api", "get_full_market_quote_v3", SAME, A(instrument_key=RELIANCE)),
    call("MarketQuoteV3Api", "get_ltp", SAME, A(instrument_key=RELIANCE)),
    call("MarketQuoteV3Api", "get_market_quote_ohlc", SAME, A("1d", instrument_key=RELIANCE)),
    call("MarketQuoteV3Api", "get_market_quote_option_greek", SAME, A(instrument_key=NIFTY_OPTION)),
    call("MutualFundApi", "get_mutual_fund_holdings", SAME, A()),
    call("MutualFundApi", "get_mutual_fund_order", SAME, A("MF-ORDER-1")),
    call("MutualFundApi", "get_mutual_fund_orders", SAME, A(page_number=1, records=20)),
    call("MutualFundApi", "get_mutual_fund_sips", SAME, A()),
    call("NewsApi", "get_news", SAME, A("instrument_keys", instrument_keys=RELIANCE)),
    call("OptionsApi", "get_option_contracts", SAME, A(NIFTY, expiry_date=EXPIRY)),
    call("OptionsApi", "get_put_call_option_chain", SAME, A(NIFTY, EXPIRY)),
    # OrderApi (v2) and OrderApiV3: MARKET placements are converted (SPEC §6)
    call("OrderApi", "cancel_multi_order", SAME, A(tag="sdk")),
    call("OrderApi", "cancel_order", SAME, A(ORDER_ID, V)),
    call("OrderApi", "exit_positions", SAME, A(tag="sdk")),
    call("OrderApi", "get_order_book", SAME, A(V)),
    call("OrderApi", "get_order_details", SAME, A(V, order_id=ORDER_ID)),
    call("OrderApi", "get_order_status", SAME, A(order_id=ORDER_ID)),
    call("OrderApi", "get_trade_history", SAME, A(V)),
    call("OrderApi", "get_trades_by_order", SAME, A(ORDER_ID, V)),
    call(
        "OrderApi", "modify_order", SAME, A(u.ModifyOrderRequest(**_modify(market_protection=5)), V)
    ),
    call(
        "OrderApi",
        "place_multi_order",
        CONVERTED,
        A([u.MultiOrderRequest(**_order(correlation_id="c1", slice=False, market_protection=5))]),
        convert=as_limit,
    ),
    call(
        "OrderApi",
        "place_order",
        CONVERTED,
        A(u.PlaceOrderRequest(**_order()), V),
        convert=as_limit,
    ),
    call("OrderApiV3", "cancel_gtt_order", SAME, A(u.GttCancelOrderRequest(gtt_order_id=GTT_ID))),
    call("OrderApiV3", "cancel_order", SAME, A(ORDER_ID)),
    call("OrderApiV3", "get_gtt_order_details", SAME, A(gtt_order_id=GTT_ID)),
    call("OrderApiV3", "modify_gtt_order", SAME, A(GTT_MODIFY)),
    call(
        "OrderApiV3", "modify_order", SAME, A(u.ModifyOrderRequest(**_modify(market_protection=5)))
    ),
    call("OrderApiV3", "place_gtt_order", SAME, A(GTT_PLACE)),
    call(
        "OrderApiV3",
        "place_order",
        CONVERTED,
        A(u.PlaceOrderV3Request(**_order(slice=False, market_protection=5))),
        convert=as_limit,
    ),
    call("PortfolioApi", "convert_positions", SAME, A(CONVERT, V)),
    call("PortfolioApi", "get_holdings", SAME, A(V)),
    call("PortfolioApi", "get_mtf_positions", SAME, A()),
    call("PortfolioApi", "get_positions", SAME, A(V)),
    call(
        "PostTradeApi", "get_trades_by_date_range", SAME, A(MONTH_START, TODAY, 1, 50, segment="EQ")
    ),
    call("TradeProfitAndLossApi", "get_profit_and_loss_charges", SAME, A("EQ", "2526", V)),
    call(
        "TradeProfitAndLossApi",
        "get_trade_wise_profit_and_loss_data",
        SAME,
        A("EQ", "2526", 1, 50, V),
    ),
    call(
        "TradeProfitAndLossApi",
        "get_trade_wise_profit_and_loss_meta_data",
        SAME,
        A("EQ", "2526", V),
    ),
    # UserApi: the static-IP API is the gateway's own (SPEC §4)
    call("UserApi", "cancel_payout", SAME, A("TXN-1")),
    call("UserApi", "get_kill_switch", SAME, A()),
    call("UserApi", "get_payin_history", SAME, A()),
    call("UserApi", "get_payout_history", SAME, A()),
    call("UserApi", "get_payout_modes", SAME, A()),
    call("UserApi", "get_profile", SAME, A(V)),
    call("UserApi", "get_user_fund_margin", SAME, A(V, segment="SEC")),
    call("UserApi", "get_user_fund_margin_v3", SAME, A()),
    row(
        "UserApi",
        "get_user_ips",
        GATEWAY,
        lambda a, c: a.get_user_ips(),
        check=lambda r, c: r.data.primary_ip == c.ip,
    ),
    call("UserApi", "initiate_payout", SAME, A(u.InitiatePayoutRequest(mode="IMPS", amount=1000))),
    call("UserApi", "modify_payout", SAME, A(u.ModifyPayoutRequest(amount=500), "TXN-1")),
    call("UserApi", "update_kill_switch", SAME, A([{"segment": "NSE_EQ", "action": "DISABLE"}])),
    # the registration the trader already has: changes nothing, keeps the session (SPEC §4)
    row(
        "UserApi",
        "update_user_ip",
        GATEWAY,
        lambda a, c: a.update_user_ip(u.UpdateUserIpRequest(primary_ip=c.ip)),
        check=lambda r, c: r.data.primary_ip == c.ip and r.data.access_tokens_invalidated is False,
    ),
    # WebsocketApi: the authorize routes and the feed URLs are plain GETs to the SDK
    call("WebsocketApi", "get_market_data_feed", SAME, A(V)),
    call("WebsocketApi", "get_market_data_feed_authorize", SAME, A(V)),
    call("WebsocketApi", "get_market_data_feed_authorize_v3", SAME, A()),
    call("WebsocketApi", "get_market_data_feed_v3", SAME, A()),
    call("WebsocketApi", "get_portfolio_stream_feed", SAME, A(V)),
    call(
        "WebsocketApi",
        "get_portfolio_stream_feed_authorize",
        SAME,
        A(V, order_update=True, position_update=True),
    ),
    call("WebsocketApi", "get_websocket_parameters", LOCAL, A()),
]
