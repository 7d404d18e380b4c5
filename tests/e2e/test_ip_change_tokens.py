"""Only a login session changes the static IPs (SPEC §4): a token's PUT /v2/user/ip is
UDAPI1179, the registry's own "may not change IPs" code, whatever the token's other scopes."""

from __future__ import annotations

import pytest

from ..harness import Harness


@pytest.mark.parametrize("kind", ["analytics", "api"])
async def test_a_tokens_ip_change_is_udapi1179_and_changes_nothing(gw: Harness, kind: str) -> None:
    trader = await gw.trader("127.0.0.2")
    if kind == "analytics":
        issued = await gw.request("POST", "/gateway/v1/analytics-token", headers=trader.bearer)
        token = issued.data["data"]["access_token"]
    else:
        issued = await gw.request("POST", "/v1/account/tokens", json={}, headers=trader.bearer)
        token = issued.data["token"]
    assert issued.status == 200, issued.body
    bearer = {"Authorization": f"Bearer {token}"}

    refused = await gw.request(
        "PUT", "/v2/user/ip", json={"primary_ip": "127.0.0.3"}, headers=bearer
    )

    assert refused.status == 403
    assert refused.error_code == "UDAPI1179"
    assert "login session" in refused.message
    shown = await gw.request("GET", "/v2/user/ip", headers=trader.bearer)
    assert shown.data["data"]["primary_ip"] == "127.0.0.2"
    assert (await gw.place(trader, order_type="LIMIT", price=1400)).status == 200  # still live
