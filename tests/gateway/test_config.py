"""load_config (SPEC §13): defaults, TOML file, GATEWAY_<SECTION>_<KEY> environment, and a
ConfigError naming the key for every value that cannot be used."""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import (
    AdminConfig,
    Config,
    ConfigError,
    InstrumentsConfig,
    LogConfig,
    RulesConfig,
    ServerConfig,
    StoreConfig,
    UpstreamConfig,
    load_config,
)
from rules.grid import default_grid
from rules.orders import MarketPolicy
from rules.registry import IpChangePolicy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def from_toml(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_config(path, env or {})


def get(config: Config, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(config, section), key)


def test_defaults_are_the_specs() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.server == ServerConfig(
        host="127.0.0.1", port=8080, trusted_proxies=(), max_body_bytes=65536
    )
    assert config.store == StoreConfig(url="sqlite:///gateway.db")
    assert config.upstream.upstox is None
    assert config.upstream.kotak is None
    assert config.upstream.paradex is None
    assert config.upstream.timeout_s == 5.0
    assert config.upstream.embedded
    r = config.rules
    assert r.ip_change is IpChangePolicy.ROLLING_7D
    assert r.timezone == ZoneInfo("Asia/Kolkata")
    assert r.session_logout == time(3, 30)
    assert r.orders_per_second == 10
    assert r.market_orders is MarketPolicy.CONVERT
    assert r.ltp_max_age_s == 2.0
    assert r.algo_id == "99999"
    assert r.algo_name == ""
    assert r.public_ips_only is False
    assert r.grid == default_grid()
    assert config.instruments == InstrumentsConfig(files=())
    assert config.log == LogConfig(access=True, format="text")
    # No admin token: the admin API is disabled, not open.
    assert config.admin == AdminConfig(token="")


def test_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SERVER_PORT", "9090")
    assert load_config().server.port == 9090


SPEC_TOML = """
[server]
host = "0.0.0.0"
port = 9443
trusted_proxies = ["10.0.0.0/8", "2001:db8::/32"]
max_body_bytes = 1024

[admin]
token = "file-admin-token"

[store]
url = "redis://127.0.0.1:6379/0"

[upstream]
upstox = "http://127.0.0.1:9000/"
kotak = "https://kotak.example:8443"
paradex = "http://[::1]:9001"
timeout_s = 3
connect_timeout_s = 0.5
shared_secret = "file-shared-secret"

[rules]
ip_change = "calendar_week"
timezone = "UTC"
session_logout = "04:05"
orders_per_second = 8
rate_limit_mode = "queue"
queue_max_wait_ms = 250
market_orders = "reject"
ltp_max_age_s = 1.5
algo_id = "12345"
algo_name = "grid-bot"
public_ips_only = true
paradex_grid = true

[instruments]
files = ["masters/upstox.json.gz", "masters/kotak.csv"]

[log]
access = false
format = "json"
"""


def test_file_overrides_every_default(tmp_path: Path) -> None:
    config = from_toml(tmp_path, SPEC_TOML)
    assert config.server == ServerConfig(
        host="0.0.0.0",
        port=9443,
        trusted_proxies=(
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("2001:db8::/32"),
        ),
        max_body_bytes=1024,
    )
    assert config.admin.token == "file-admin-token"
    assert config.store.url == "redis://127.0.0.1:6379/0"
    assert config.upstream == UpstreamConfig(
        upstox="http://127.0.0.1:9000",
        kotak="https://kotak.example:8443",
        paradex="http://[::1]:9001",
        timeout_s=3.0,
        connect_timeout_s=0.5,
        shared_secret="file-shared-secret",
    )
    assert not config.upstream.embedded
    assert config.rules == RulesConfig(
        ip_change=IpChangePolicy.CALENDAR_WEEK,
        timezone=ZoneInfo("UTC"),
        session_logout=time(4, 5),
        orders_per_second=8,
        rate_limit_mode="queue",
        queue_max_wait_ms=250,
        market_orders=MarketPolicy.REJECT,
        ltp_max_age_s=1.5,
        algo_id="12345",
        algo_name="grid-bot",
        public_ips_only=True,
        paradex_grid=True,
    )
    assert config.instruments.files == (
        Path("masters/upstox.json.gz"),
        Path("masters/kotak.csv"),
    )
    assert config.log == LogConfig(access=False, format="json")


def test_grid_file_replaces_the_shipped_grid(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "rules" / "grid.toml"
    config = load_config(None, {"GATEWAY_RULES_GRID_FILE": str(shipped)})
    assert config.rules.grid == default_grid()


@pytest.mark.parametrize(
    ("name", "value", "dotted", "expected"),
    [
        ("GATEWAY_ADMIN_TOKEN", "env-admin-token", "admin.token", "env-admin-token"),
        ("GATEWAY_SERVER_HOST", "::", "server.host", "::"),
        ("GATEWAY_SERVER_PORT", "8081", "server.port", 8081),
        (
            "GATEWAY_SERVER_TRUSTED_PROXIES",
            "10.0.0.0/8,::1/128",
            "server.trusted_proxies",
            (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")),
        ),
        ("GATEWAY_SERVER_TRUSTED_PROXIES", "", "server.trusted_proxies", ()),
        ("GATEWAY_SERVER_MAX_BODY_BYTES", "2048", "server.max_body_bytes", 2048),
        ("GATEWAY_STORE_URL", "sqlite:///var/lib/gw.db", "store.url", "sqlite:///var/lib/gw.db"),
        (
            "GATEWAY_UPSTREAM_UPSTOX",
            "https://api.example",
            "upstream.upstox",
            "https://api.example",
        ),
        ("GATEWAY_UPSTREAM_KOTAK", "", "upstream.kotak", None),
        ("GATEWAY_UPSTREAM_TIMEOUT_S", "2.5", "upstream.timeout_s", 2.5),
        ("GATEWAY_UPSTREAM_SHARED_SECRET", "env-secret", "upstream.shared_secret", "env-secret"),
        ("GATEWAY_RULES_IP_CHANGE", "rolling_7d", "rules.ip_change", IpChangePolicy.ROLLING_7D),
        ("GATEWAY_RULES_TIMEZONE", "Europe/London", "rules.timezone", ZoneInfo("Europe/London")),
        ("GATEWAY_RULES_SESSION_LOGOUT", "00:00", "rules.session_logout", time(0, 0)),
        ("GATEWAY_RULES_ORDERS_PER_SECOND", "10", "rules.orders_per_second", 10),
        ("GATEWAY_RULES_MARKET_ORDERS", "convert", "rules.market_orders", MarketPolicy.CONVERT),
        ("GATEWAY_RULES_LTP_MAX_AGE_S", "3", "rules.ltp_max_age_s", 3.0),
        ("GATEWAY_RULES_ALGO_ID", "777", "rules.algo_id", "777"),
        ("GATEWAY_RULES_ALGO_NAME", "", "rules.algo_name", ""),
        ("GATEWAY_RULES_PUBLIC_IPS_ONLY", "false", "rules.public_ips_only", False),
        ("GATEWAY_RULES_PUBLIC_IPS_ONLY", "TRUE", "rules.public_ips_only", True),
        ("GATEWAY_RULES_PUBLIC_IPS_ONLY", "0", "rules.public_ips_only", False),
        ("GATEWAY_RULES_RATE_LIMIT_MODE", "reject", "rules.rate_limit_mode", "reject"),
        ("GATEWAY_RULES_QUEUE_MAX_WAIT_MS", "0", "rules.queue_max_wait_ms", 0),
        (
            "GATEWAY_INSTRUMENTS_FILES",
            "a.json, b.csv",
            "instruments.files",
            (Path("a.json"), Path("b.csv")),
        ),
    ],
)
def test_environment_overrides_the_file(
    tmp_path: Path, name: str, value: str, dotted: str, expected: object
) -> None:
    config = from_toml(tmp_path, SPEC_TOML, {name: value})
    assert get(config, dotted) == expected


def test_environment_alone_sets_values() -> None:
    config = load_config(
        None, {"GATEWAY_RULES_MARKET_ORDERS": "reject", "GATEWAY_SERVER_PORT": "0"}
    )
    assert config.rules.market_orders is MarketPolicy.REJECT
    assert config.server.port == 0  # an ephemeral port, as tests use


def test_foreign_environment_variables_are_ignored() -> None:
    # CGI sets GATEWAY_INTERFACE; other prefixes are not ours at all.
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "GATEWAY": "x", "SERVER_PORT": "1", "PORT": "2"}
    assert load_config(None, env) == Config()


def test_embedded_is_true_only_without_any_upstream(tmp_path: Path) -> None:
    assert load_config(None, {}).upstream.embedded
    assert from_toml(tmp_path, "[upstream]\ntimeout_s = 2\n").upstream.embedded
    partial = load_config(None, {"GATEWAY_UPSTREAM_PARADEX": "http://127.0.0.1:9000"})
    assert not partial.upstream.embedded


def test_secrets_are_not_in_repr(tmp_path: Path) -> None:
    config = from_toml(
        tmp_path,
        SPEC_TOML,
        {"GATEWAY_STORE_URL": "redis://:redis-password@10.0.0.5:6379/0"},
    )
    shown = repr(config) + str(config) + repr(config.admin) + repr(config.upstream)
    shown += repr(config.store)
    for secret in ("file-admin-token", "file-shared-secret", "redis-password"):
        assert secret not in shown
    assert "10.0.0.5:6379/0" in repr(config.store)
    assert config.store.url == "redis://:redis-password@10.0.0.5:6379/0"


@pytest.mark.parametrize(
    "text", ["[admin]\ntoken = 918273645\n", "[upstream]\nshared_secret = 918273645\n"]
)
def test_a_mistyped_secret_is_not_echoed(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_toml(tmp_path, text)
    assert "918273645" not in str(exc.value)


def test_a_bad_store_url_is_reported_without_its_password() -> None:
    with pytest.raises(ConfigError, match=re.escape("store.url")) as exc:
        load_config(None, {"GATEWAY_STORE_URL": "redis://:hunter2@[::1/0"})
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_sample_configs_load(path: Path) -> None:
    config = load_config(path, {"GATEWAY_ADMIN_TOKEN": "t"})
    assert config.server.port > 0


def test_deploy_has_sample_configs() -> None:
    assert sorted(DEPLOY.glob("*.toml"))


# bad values --------------------------------------------------------------------------------

BAD_ENV = [
    ("GATEWAY_SERVER_PROT", "8080", "server.prot"),
    ("GATEWAY_RULES_MARKET_ORDER", "reject", "rules.market_order"),
    ("GATEWAY_SERVER_PORT", "http", "server.port"),
    ("GATEWAY_SERVER_PORT", "-1", "server.port"),
    ("GATEWAY_SERVER_PORT", "65536", "server.port"),
    ("GATEWAY_SERVER_PORT", "8080.0", "server.port"),
    ("GATEWAY_SERVER_MAX_BODY_BYTES", "0", "server.max_body_bytes"),
    ("GATEWAY_SERVER_TRUSTED_PROXIES", "10.0.0.1/8", "server.trusted_proxies"),
    ("GATEWAY_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local", "server.trusted_proxies"),
    ("GATEWAY_SERVER_TRUSTED_PROXIES", "10.0.0.0/33", "server.trusted_proxies"),
    ("GATEWAY_SERVER_TRUSTED_PROXIES", "fe80::/10%eth0", "server.trusted_proxies"),
    ("GATEWAY_STORE_URL", "postgres://db/gw", "store.url"),
    ("GATEWAY_STORE_URL", "gateway.db", "store.url"),
    ("GATEWAY_STORE_URL", "sqlite://gateway.db", "store.url"),
    ("GATEWAY_STORE_URL", "sqlite:///", "store.url"),
    ("GATEWAY_STORE_URL", "redis://", "store.url"),
    ("GATEWAY_STORE_URL", "redis://127.0.0.1:6379/0?prefix=", "store.url"),
    ("GATEWAY_UPSTREAM_UPSTOX", "ftp://127.0.0.1:9000", "upstream.upstox"),
    ("GATEWAY_UPSTREAM_KOTAK", "127.0.0.1:9000", "upstream.kotak"),
    ("GATEWAY_UPSTREAM_PARADEX", "http://", "upstream.paradex"),
    ("GATEWAY_UPSTREAM_UPSTOX", "http://:9000", "upstream.upstox"),
    ("GATEWAY_UPSTREAM_TIMEOUT_S", "0", "upstream.timeout_s"),
    ("GATEWAY_UPSTREAM_TIMEOUT_S", "-5", "upstream.timeout_s"),
    ("GATEWAY_UPSTREAM_TIMEOUT_S", "soon", "upstream.timeout_s"),
    ("GATEWAY_UPSTREAM_CONNECT_TIMEOUT_S", "nan", "upstream.connect_timeout_s"),
    ("GATEWAY_RULES_LTP_MAX_AGE_S", "inf", "rules.ltp_max_age_s"),
    ("GATEWAY_RULES_LTP_MAX_AGE_S", "0", "rules.ltp_max_age_s"),
    ("GATEWAY_RULES_ORDERS_PER_SECOND", "0", "rules.orders_per_second"),
    ("GATEWAY_RULES_ORDERS_PER_SECOND", "-10", "rules.orders_per_second"),
    ("GATEWAY_RULES_ORDERS_PER_SECOND", "2.5", "rules.orders_per_second"),
    ("GATEWAY_RULES_QUEUE_MAX_WAIT_MS", "-1", "rules.queue_max_wait_ms"),
    ("GATEWAY_RULES_IP_CHANGE", "weekly", "rules.ip_change"),
    ("GATEWAY_RULES_MARKET_ORDERS", "allow", "rules.market_orders"),
    ("GATEWAY_RULES_MARKET_ORDERS", "REJECT", "rules.market_orders"),
    ("GATEWAY_RULES_RATE_LIMIT_MODE", "drop", "rules.rate_limit_mode"),
    ("GATEWAY_RULES_TIMEZONE", "Mars/Olympus_Mons", "rules.timezone"),
    ("GATEWAY_RULES_TIMEZONE", "America", "rules.timezone"),
    ("GATEWAY_RULES_TIMEZONE", "", "rules.timezone"),
    ("GATEWAY_RULES_TIMEZONE", "../../etc/passwd", "rules.timezone"),
    ("GATEWAY_RULES_SESSION_LOGOUT", "3:30:00", "rules.session_logout"),
    ("GATEWAY_RULES_SESSION_LOGOUT", "24:00", "rules.session_logout"),
    ("GATEWAY_RULES_SESSION_LOGOUT", "03:60", "rules.session_logout"),
    ("GATEWAY_RULES_SESSION_LOGOUT", "noon", "rules.session_logout"),
    ("GATEWAY_RULES_SESSION_LOGOUT", "", "rules.session_logout"),
    ("GATEWAY_RULES_PUBLIC_IPS_ONLY", "maybe", "rules.public_ips_only"),
    ("GATEWAY_RULES_PARADEX_GRID", "2", "rules.paradex_grid"),
    ("GATEWAY_RULES_ALGO_ID", "", "rules.algo_id"),
    ("GATEWAY_RULES_ALGO_ID", "99999\r\nX-Evil: 1", "rules.algo_id"),
    ("GATEWAY_RULES_ALGO_NAME", "bot\nX-Evil: 1", "rules.algo_name"),
    ("GATEWAY_RULES_GRID_FILE", "/nonexistent/grid.toml", "rules.grid_file"),
    ("GATEWAY_LOG_FORMAT", "xml", "log.format"),
    ("GATEWAY_LOG_ACCESS", "sometimes", "log.access"),
]


@pytest.mark.parametrize(("name", "value", "key"), BAD_ENV)
def test_bad_environment_value_names_its_key(name: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(None, {name: value})


BAD_TOML = [
    ("[srever]\nport = 1\n", "srever"),
    ("server = 1\n", "server"),
    ("[server]\nprot = 8080\n", "server.prot"),
    ("[rules]\nmarket_order = 'reject'\n", "rules.market_order"),
    ("[server]\nport = 8080.5\n", "server.port"),
    ("[server]\nport = true\n", "server.port"),
    ("[server]\nport = 100000\n", "server.port"),
    ("[server]\nhost = 1\n", "server.host"),
    ("[server]\ntrusted_proxies = '10.0.0.0/8'\n", "server.trusted_proxies"),
    ("[server]\ntrusted_proxies = [8]\n", "server.trusted_proxies"),
    ("[admin]\ntoken = 12345\n", "admin.token"),
    ("[store]\nurl = 5\n", "store.url"),
    ("[upstream]\nupstox = 9000\n", "upstream.upstox"),
    ("[upstream]\ntimeout_s = true\n", "upstream.timeout_s"),
    ("[upstream]\ntimeout_s = inf\n", "upstream.timeout_s"),
    ("[upstream]\ntimeout_s = -1.0\n", "upstream.timeout_s"),
    ("[rules]\nsession_logout = 03:30:00\n", "rules.session_logout"),
    ("[rules]\npublic_ips_only = 1\n", "rules.public_ips_only"),
    ("[rules]\npublic_ips_only = 'yes please'\n", "rules.public_ips_only"),
    ("[rules]\norders_per_second = 0\n", "rules.orders_per_second"),
    ("[rules]\nltp_max_age_s = -2.0\n", "rules.ltp_max_age_s"),
    ("[rules]\nip_change = 7\n", "rules.ip_change"),
    ("[rules]\ntimezone = 'IST'\n", "rules.timezone"),
    ("[instruments]\nfiles = 'a.json'\n", "instruments.files"),
    ("[instruments]\nfiles = [1]\n", "instruments.files"),
    ("[log]\nformat = 'JSON'\n", "log.format"),
    ("[log]\nacess = true\n", "log.acess"),
]


@pytest.mark.parametrize(("text", "key"), BAD_TOML)
def test_bad_file_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        from_toml(tmp_path, text)


def test_environment_cannot_mend_a_bad_file_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("server.prot")):
        from_toml(tmp_path, "[server]\nprot = 1\n", {"GATEWAY_SERVER_PORT": "1"})


def test_environment_fixes_a_bad_file_value(tmp_path: Path) -> None:
    config = from_toml(tmp_path, "[server]\nport = 'x'\n", {"GATEWAY_SERVER_PORT": "81"})
    assert config.server.port == 81


@pytest.mark.parametrize("text", ["[server\nport = 1\n", "port = = 1\n"])
def test_unparsable_file_names_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "gateway.toml"))):
        from_toml(tmp_path, text)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_config(missing, {})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
