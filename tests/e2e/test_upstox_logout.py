"""Upstox's ``DELETE /v2/logout`` (the SDK's ``LoginApi.logout``) ends the gateway session."""

from __future__ import annotations

from ..harness import Harness


async def test_upstox_logout_ends_the_session_and_sends_nothing_upstream(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    out = await gw.request("DELETE", "/v2/logout", headers={**trader.bearer, "Api-Version": "2.0"})

    assert out.status == 200, out.body
    assert out.data == {"status": "success", "data": True}
    after = await gw.place(trader, order_type="LIMIT", price=1400)
    assert after.status == 401
    assert after.error_code == "UDAPI100050"
    assert await gw.upstream_requests() == []


async def test_upstox_logout_with_a_dead_token_is_401(gw: Harness) -> None:
    out = await gw.request("DELETE", "/v2/logout", headers={"Authorization": "Bearer nope"})
    assert out.status == 401
    assert out.error_code == "UDAPI100050"
