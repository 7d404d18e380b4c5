"""The request log (SPEC §13 ``[log]``) of a real gateway: one line per request, in text or
JSON lines, saying what was decided and never a secret."""

from __future__ import annotations

import json
import logging
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..conftest import GatewayFactory
from ..harness import ADMIN_TOKEN, RELIANCE, Harness, market_order
from ..process import clean_env, free_port, start, wait_until_up

ACCESS = "order_gateway.access"
PLACE = "/v2/order/place"


def lines(caplog: pytest.LogCaptureFixture, fmt: str) -> list[dict[str, Any]]:
    """Every access line of the run, as fields (text lines are ``key=value`` pairs)."""
    found: list[dict[str, Any]] = []
    for record in caplog.records:
        if record.name != ACCESS:
            continue
        message = record.getMessage()
        if fmt == "json":
            found.append(json.loads(message))
        else:
            found.append(dict(pair.split("=", 1) for pair in message.split(" ")))
    return found


def last(caplog: pytest.LogCaptureFixture, fmt: str, path: str) -> dict[str, Any]:
    return [line for line in lines(caplog, fmt) if line["path"] == path][-1]


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_admitted_refused_and_rate_limited_orders_each_get_a_line(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    gw = await make_gateway(log_format=fmt)
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250"})
    text = fmt == "text"

    placed = await gw.request(
        "POST",
        PLACE,
        ip=trader.ip,
        json=market_order(),
        headers={**trader.bearer, "X-Request-Id": "client-req.42"},
    )
    assert placed.status == 200
    line = last(caplog, fmt, PLACE)
    assert line["request_id"] == "client-req.42"
    assert (line["dialect"], line["route_class"], line["account"]) == (
        "upstox",
        "place",
        trader.user_id,
    )
    assert (line["client_ip"], line["method"]) == ("127.0.0.2", "POST")
    assert line["decision"] == "admitted"
    assert line["reason"] == ("-" if text else None)
    assert str(line["status"]) == "200"
    assert float(line["gateway_ms"]) > 0
    assert float(line["upstream_ms"]) > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", line["time"])

    refused = await gw.place(trader, ip="127.0.0.9")
    assert refused.status == 403
    line = last(caplog, fmt, PLACE)
    assert (line["decision"], line["reason"], str(line["status"])) == (
        "refused",
        "ip_not_registered",
        "403",
    )
    assert line["client_ip"] == "127.0.0.9"
    assert line["upstream_ms"] == ("-" if text else None)
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])  # made here: none was sent

    for _ in range(9):
        assert (await gw.place(trader)).status == 200
    limited = await gw.place(trader)
    assert limited.status == 429
    line = last(caplog, fmt, PLACE)
    assert (line["decision"], line["reason"], str(line["status"])) == (
        "refused",
        "rate_limited",
        "429",
    )
    assert line["account"] == trader.user_id

    # one line per request: the 13 orders, the admin calls, the logins and the IP change
    assert len([x for x in lines(caplog, fmt) if x["path"] == PLACE]) == 12


async def test_every_route_class_is_named(gw: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    trader = await gw.trader()
    await gw.request("GET", "/v2/user/profile", ip=trader.ip, headers=trader.bearer)
    await gw.request("GET", "/healthz")
    await gw.admin("GET", "/accounts")
    await gw.request("GET", "/v2/user/profile", headers={"X-Request-Id": "bad id; drop table"})
    seen = {(x["path"], x["route_class"], x["decision"]) for x in lines(caplog, "text")}
    assert ("/v2/user/profile", "read", "forwarded") in seen
    assert ("/v2/user/profile", "read", "refused") in seen  # no token: 401
    assert ("/healthz", "gateway", "ok") in seen
    assert ("/admin/v1/accounts", "admin", "ok") in seen
    assert ("/gateway/v1/session", "gateway", "ok") in seen
    # the unsafe X-Request-Id was replaced by one made here (32 hex digits)
    [unsafe] = [x for x in lines(caplog, "text") if x["reason"] == "invalid_token"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe["request_id"])


async def test_the_access_log_can_be_turned_off(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    gw = await make_gateway(log_access="false")
    await gw.trader()
    assert lines(caplog, "text") == []


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_secret_the_run_used_is_anywhere_in_its_log(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    gw = await make_gateway(log_format=fmt)
    trader = await gw.trader()
    await gw.push_ltp({RELIANCE: "1250"})
    api = await gw.request(
        "POST",
        "/v1/account/tokens",
        ip=trader.ip,
        json={"name": "bot", "token_type": "api_key", "expiry_duration": 3600},
        headers=trader.bearer,
    )
    assert api.status == 200, api.body
    api_token = str(api.data["token"])
    upstream_value = "Bearer upstream-credential-5f0c1e"
    stored = await gw.admin(
        "PUT",
        f"/accounts/{trader.user_id}/upstream-auth/upstox",
        {"headers": {"Authorization": upstream_value}},
    )
    assert stored.status == 204, stored.body

    assert (await gw.place(trader)).status == 200  # goes upstream with the stored credential
    assert (await gw.place(trader, ip="127.0.0.9")).status == 403
    bad_login = {"api_key": trader.api_key, "api_secret": trader.api_secret + "x"}
    assert (await gw.request("POST", "/gateway/v1/session", json=bad_login)).status == 401
    read = await gw.request(
        "GET", "/v1/account/summary", ip=trader.ip, headers={"Authorization": f"Bearer {api_token}"}
    )
    assert read.status < 500
    wrong_admin = await gw.request(
        "GET", "/admin/v1/accounts", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}
    )
    assert wrong_admin.status == 401
    explained = await gw.admin(
        "POST",
        "/explain",
        {
            "client_ip": trader.ip,
            "method": "POST",
            "path": PLACE,
            "headers": trader.bearer,
            "body": json.dumps(market_order()),
        },
    )
    assert explained.status == 200
    audit = await gw.admin("GET", "/audit?limit=100")

    secrets = {
        "session token": trader.token,
        "API token": api_token,
        "admin token": ADMIN_TOKEN,
        "api_secret": trader.api_secret,
        "upstream credential": upstream_value.split()[1],
    }
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert len(lines(caplog, fmt)) >= 10
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} is in the log"
        assert secret not in audit.body.decode(), f"the {name} is in the audit log"


async def test_serve_writes_bare_json_lines_in_json_mode(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        GATEWAY_SERVER_PORT=str(port),
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/log.db",
        GATEWAY_LOG_ACCESS="true",
        GATEWAY_LOG_FORMAT="json",
    )
    process = await start(env, "serve", "--paper-port", str(free_port()))
    try:
        await wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        async with aiohttp.ClientSession() as client:
            headers = {"X-Request-Id": "json-mode-1"}
            async with client.get(f"http://127.0.0.1:{port}/readyz", headers=headers) as resp:
                assert resp.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await process.communicate()
    [line] = [x for x in stderr.decode().splitlines() if "json-mode-1" in x]
    fields = json.loads(line)  # the whole line is the object: no text log prefix
    assert (fields["path"], fields["status"], fields["route_class"]) == ("/readyz", 200, "gateway")
