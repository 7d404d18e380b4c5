"""SPEC §13 ``server.tls_cert``/``tls_key``: HTTPS on the same port, with certificates from a
throwaway CA (trustme); clients trust that CA only, as a strategy host would trust the
operator's certificate."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import upstox_client
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import Config, ConfigError, load_config
from gateway.serving import beyond_loopback, open_listener, tls_context

from ..harness import ADMIN_TOKEN, RELIANCE
from ..process import free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(server certificate chain, server key, CA certificate) as PEM files."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return chain, key, ca_file


def config_for(paper: TestServer, tmp_path: Path, **server: str) -> Config:
    base = str(paper.make_url("")).rstrip("/")
    env = {
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_STORE_URL": f"sqlite:///{tmp_path}/tls.db",
        "GATEWAY_UPSTREAM_UPSTOX": base,
        "GATEWAY_UPSTREAM_KOTAK": base,
        "GATEWAY_UPSTREAM_PARADEX": base,
        **{f"GATEWAY_SERVER_{key.upper()}": value for key, value in server.items()},
    }
    return load_config(None, env)


@pytest.fixture
async def https_gateway(
    paper: TestServer, pem: tuple[Path, Path, Path], tmp_path: Path
) -> AsyncIterator[str]:
    chain, key, _ = pem
    port = free_port()
    config = config_for(paper, tmp_path, port=str(port), tls_cert=str(chain), tls_key=str(key))
    runner = await open_listener(config, 0)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _json(client: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with client.request(method, url, **kw) as response:
        assert response.status < 300, await response.text()
        return await response.json(content_type=None)


async def _registered_app(client: aiohttp.ClientSession, url: str, user_id: str) -> Any:
    """An account with an app and 127.0.0.1 as its static IP; the LTP of RELIANCE pushed."""
    account = {"user_id": user_id, "name": "T"}
    await _json(client, "POST", f"{url}/admin/v1/accounts", json=account, headers=ADMIN)
    app = await _json(client, "POST", f"{url}/admin/v1/accounts/{user_id}/apps", headers=ADMIN)
    login = await _json(client, "POST", f"{url}/gateway/v1/session", json=app)
    bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
    ip = {"primary_ip": "127.0.0.1"}
    await _json(client, "PUT", f"{url}/v2/user/ip", json=ip, headers=bearer)
    await _json(client, "PUT", f"{url}/admin/v1/ltp", json={RELIANCE: "1401.5"}, headers=ADMIN)
    return app


def _order(**fields: Any) -> dict[str, Any]:
    return {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "price": 0,
        "tag": "tls",
        "instrument_token": RELIANCE,
        "order_type": "MARKET",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0,
        "is_amo": False,
        **fields,
    }


async def test_a_client_trusting_the_ca_places_an_order_over_https(
    https_gateway: str, paper: TestServer, pem: tuple[Path, Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(pem[2]))
    connector = aiohttp.TCPConnector(ssl=trust)
    async with aiohttp.ClientSession(connector=connector, headers=ADMIN) as client:
        app = await _registered_app(client, https_gateway, "TLS001")
        login = await _json(client, "POST", f"{https_gateway}/gateway/v1/session", json=app)
        bearer = {"Authorization": f"Bearer {login['data']['access_token']}"}
        async with client.post(
            f"{https_gateway}/v2/order/place", json=_order(), headers=bearer
        ) as placed:
            assert placed.status == 200, await placed.text()
            assert placed.headers["X-Gateway-Order-Type"] == "LIMIT"
        async with client.get(paper.make_url("/paper/orders")) as orders:
            [arrived] = (await orders.json())["orders"]
    assert arrived["body"]["order_type"] == "LIMIT"


async def test_a_client_without_the_ca_is_refused_by_its_own_tls_check(https_gateway: str) -> None:
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await client.get(f"{https_gateway}/healthz")
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            await client.get(https_gateway.replace("https", "http") + "/healthz")


@pytest.mark.sdk
async def test_the_upstox_sdk_places_an_order_over_https_with_the_test_ca(
    https_gateway: str, paper: TestServer, pem: tuple[Path, Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(pem[2]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as client:
        app = await _registered_app(client, https_gateway, "TLS002")

    def sdk_place() -> tuple[str, Any]:
        configuration = upstox_client.Configuration()
        configuration.host = configuration.order_host = https_gateway
        configuration.ssl_ca_cert = str(pem[2])
        token = upstox_client.LoginApi(upstox_client.ApiClient(configuration)).token(
            "2.0",
            code="paper-code",
            client_id=app["api_key"],
            client_secret=app["api_secret"],
            redirect_uri="http://127.0.0.1/callback",
            grant_type="authorization_code",
        )
        configuration.access_token = token.access_token
        orders = upstox_client.OrderApi(upstox_client.ApiClient(configuration))
        request = upstox_client.PlaceOrderRequest(**{**_order(), "price": 0.0})
        return token.user_id, orders.place_order(request, "2.0")

    user_id, placed = await asyncio.to_thread(sdk_place)

    assert user_id == "TLS002" and placed.status == "success"
    async with (
        aiohttp.ClientSession() as client,
        client.get(paper.make_url("/paper/orders")) as orders,
    ):
        [arrived] = (await orders.json())["orders"]
    assert arrived["order_id"] == placed.data.order_id
    assert arrived["body"]["order_type"] == "LIMIT"


@pytest.mark.parametrize(("given", "missing"), [("tls_cert", "tls_key"), ("tls_key", "tls_cert")])
def test_one_tls_key_without_the_other_fails_naming_both(given: str, missing: str) -> None:
    with pytest.raises(ConfigError) as failed:
        load_config(None, {f"GATEWAY_SERVER_{given.upper()}": "/etc/x.pem"})
    assert f"server.{given} is set but server.{missing} is not" in str(failed.value)


def test_unreadable_pem_files_fail_at_startup_naming_the_keys(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    config = load_config(
        None,
        {
            "GATEWAY_SERVER_TLS_CERT": str(tmp_path / "cert.pem"),
            "GATEWAY_SERVER_TLS_KEY": str(tmp_path / "absent.pem"),
        },
    )
    with pytest.raises(ConfigError) as failed:
        tls_context(config)
    assert "server.tls_cert" in str(failed.value) and "server.tls_key" in str(failed.value)


@pytest.mark.parametrize(
    ("host", "beyond"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("", True),
        ("203.0.113.7", True),
        ("gw.example.com", True),
    ],
)
def test_what_counts_as_beyond_loopback(host: str, beyond: bool) -> None:
    assert beyond_loopback(host) is beyond


async def _listen_and_log(config: Config, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level(logging.INFO, logger="order_gateway")
    runner: web.AppRunner = await open_listener(config, 0)
    await runner.cleanup()
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_listening_beyond_loopback_without_tls_logs_a_warning(
    paper: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(paper, tmp_path, host="0.0.0.0", port=str(free_port("0.0.0.0")))
    [warning] = await _listen_and_log(config, caplog)
    assert "listening on 0.0.0.0 without TLS" in warning and "server.tls_cert" in warning


async def test_no_warning_on_loopback_or_with_tls(
    paper: TestServer,
    tmp_path: Path,
    pem: tuple[Path, Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    loopback = config_for(paper, tmp_path, port=str(free_port()))
    assert await _listen_and_log(loopback, caplog) == []
    chain, key, _ = pem
    tls = config_for(
        paper,
        tmp_path,
        host="0.0.0.0",
        port=str(free_port("0.0.0.0")),
        tls_cert=str(chain),
        tls_key=str(key),
    )
    assert await _listen_and_log(tls, caplog) == []


def test_the_other_server_keys_of_spec_13_parse() -> None:
    server = load_config(
        None,
        {
            "GATEWAY_SERVER_PUBLIC_URL": "https://gw.example.com/",
            "GATEWAY_SERVER_MAX_HEADER_BYTES": "8192",
        },
    ).server
    assert server.public_url == "https://gw.example.com"
    assert server.max_header_bytes == 8192
    assert (server.tls, server.tls_cert, server.tls_key) == (False, None, None)
    assert load_config(None, {}).server.max_header_bytes == 16384
    for key, bad in (("PUBLIC_URL", "gw.example.com"), ("MAX_HEADER_BYTES", "10")):
        with pytest.raises(ConfigError, match=f"server.{key.lower()}"):
            load_config(None, {f"GATEWAY_SERVER_{key}": bad})
