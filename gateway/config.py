"""Configuration: one frozen tree, parsed once at startup (SPEC §13).

Every key has a default; a TOML file overrides defaults and ``GATEWAY_<SECTION>_<KEY>``
environment variables override the file.  Everything is turned into its working type here
(``ipaddress`` networks, ``ZoneInfo``, ``Decimal`` grids, enums), so nothing on the request
path parses a string, and a bad value fails at startup with a message naming its key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rules.grid import Grid, default_grid
from rules.orders import MarketPolicy
from rules.registry import IpChangePolicy
from rules.types import IPNetwork

from .config_values import ConfigError as ConfigError
from .config_values import (
    _bool,
    _choice,
    _clock,
    _enum,
    _float,
    _grid,
    _header_value,
    _int,
    _list,
    _network,
    _redact,
    _store_url,
    _str,
    _strings,
    _tls_path,
    _url,
    _zone,
)

# Above Linux's first SYN retransmission (1 s): one SYN dropped by an upstream whose accept
# queue overflowed in a burst costs a second, not the order.
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxies: tuple[IPNetwork, ...] = ()
    max_body_bytes: int = 65536
    max_header_bytes: int = 16384
    tls_cert: Path | None = None  # HTTPS on the same port when both are set (SPEC §13)
    tls_key: Path | None = None
    public_url: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True, slots=True)
class AdminConfig:
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, repr=False)
class StoreConfig:
    url: str = "sqlite:///gateway.db"

    def __repr__(self) -> str:
        return f"StoreConfig(url={_redact(self.url)!r})"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    upstox: str | None = None
    kotak: str | None = None
    paradex: str | None = None
    timeout_s: float = 5.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    shared_secret: str = field(default="", repr=False)
    # SPEC §14: Upstox's HFT host for place/modify/cancel, Kotak's login host.  Unset: the
    # dialect's own URL.
    upstox_orders: str | None = None
    kotak_login: str | None = None
    login_relay: bool = False

    @property
    def hosts(self) -> dict[str, str]:
        """The dialects' named hosts that are configured, as ``Upstream`` keys them."""
        named = {"upstox.orders": self.upstox_orders, "kotak.login": self.kotak_login}
        return {name: url for name, url in named.items() if url}

    @property
    def urls(self) -> dict[str, str | None]:
        """The base URL per dialect under SPEC §13's fixed keys; ``create_app`` checks them
        against the dialect registry, so a key without a dialect (or the reverse) fails at
        startup instead of routing a broker's orders nowhere."""
        return {"upstox": self.upstox, "kotak": self.kotak, "paradex": self.paradex}

    @property
    def every_url(self) -> dict[str, str]:
        """Every configured base URL by its config key, the named hosts' included."""
        keyed = {**self.urls, "upstox_orders": self.upstox_orders, "kotak_login": self.kotak_login}
        return {key: url for key, url in keyed.items() if url}

    @property
    def embedded(self) -> bool:
        """No upstream configured: the bundled paper broker runs in-process."""
        return all(url is None for url in self.urls.values())


@dataclass(frozen=True, slots=True)
class RulesConfig:
    ip_change: IpChangePolicy = IpChangePolicy.ROLLING_7D
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Kolkata"))
    session_logout: time = time(3, 30)
    orders_per_second: int = 10
    rate_limit_mode: str = "reject"
    queue_max_wait_ms: int = 0
    market_orders: MarketPolicy = MarketPolicy.CONVERT
    ltp_max_age_s: float = 2.0
    algo_id: str = "99999"
    algo_name: str = ""
    public_ips_only: bool = False
    grid: Grid = field(default_factory=default_grid)
    paradex_grid: bool = False


@dataclass(frozen=True, slots=True)
class InstrumentsConfig:
    files: tuple[Path, ...] = ()
    # SPEC §14: masters downloaded at start and daily at refresh_at (rules.timezone)
    urls: tuple[str, ...] = ()
    refresh_at: time = time(8, 0)


@dataclass(frozen=True, slots=True)
class LogConfig:
    access: bool = True  # one line per request on the order_gateway.access logger
    format: str = "text"  # or "json": one JSON object per line


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    instruments: InstrumentsConfig = field(default_factory=InstrumentsConfig)
    log: LogConfig = field(default_factory=LogConfig)


_SECTIONS: dict[str, frozenset[str]] = {
    "server": frozenset(
        {
            "host",
            "port",
            "trusted_proxies",
            "max_body_bytes",
            "max_header_bytes",
            "tls_cert",
            "tls_key",
            "public_url",
        }
    ),
    "admin": frozenset({"token"}),
    "store": frozenset({"url"}),
    "upstream": frozenset(
        {
            "upstox",
            "kotak",
            "paradex",
            "timeout_s",
            "connect_timeout_s",
            "shared_secret",
            "upstox_orders",
            "kotak_login",
            "login_relay",
        }
    ),
    "rules": frozenset(
        {
            "ip_change",
            "timezone",
            "session_logout",
            "orders_per_second",
            "rate_limit_mode",
            "queue_max_wait_ms",
            "market_orders",
            "ltp_max_age_s",
            "algo_id",
            "algo_name",
            "public_ips_only",
            "grid_file",
            "paradex_grid",
        }
    ),
    "instruments": frozenset({"files", "urls", "refresh_at"}),
    "log": frozenset({"access", "format"}),
}
_LISTS = {("server", "trusted_proxies"), ("instruments", "files"), ("instruments", "urls")}


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from an optional TOML file and the environment."""
    raw: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        for section, values in data.items():
            if section not in _SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"unknown config section [{section}]")
            raw[section].update(values)
    for name, value in (os.environ if env is None else env).items():
        if not name.startswith("GATEWAY_"):
            continue
        section, _, key = name[len("GATEWAY_") :].lower().partition("_")
        # A foreign GATEWAY_* (CGI's GATEWAY_INTERFACE) is ignored, but a misspelt key of one
        # of our sections is an error below, not a setting silently left at its default.
        if section in _SECTIONS:
            raw[section][key] = _from_env(section, key, value)
    for section, values in raw.items():
        for key in values:
            if key not in _SECTIONS[section]:
                raise ConfigError(f"unknown config key {section}.{key}")
    return _build(raw)


def _from_env(section: str, key: str, value: str) -> object:
    if (section, key) in _LISTS:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _build(raw: dict[str, dict[str, Any]]) -> Config:
    s, a, st, u, r, i, lg = (raw[k] for k in _SECTIONS)
    server = ServerConfig(
        host=_str(s, "server.host", "127.0.0.1"),
        port=_int(s, "server.port", 8080, minimum=0, maximum=65535),
        trusted_proxies=tuple(
            _network(v, "server.trusted_proxies") for v in _list(s, "server.trusted_proxies")
        ),
        max_body_bytes=_int(s, "server.max_body_bytes", 65536, minimum=1),
        max_header_bytes=_int(s, "server.max_header_bytes", 16384, minimum=1024),
        tls_cert=_tls_path(s, "server.tls_cert"),
        tls_key=_tls_path(s, "server.tls_key"),
        public_url=_url(s, "server.public_url"),
    )
    if (server.tls_cert is None) != (server.tls_key is None):
        given, missing = ("tls_cert", "tls_key") if server.tls_cert else ("tls_key", "tls_cert")
        raise ConfigError(
            f"server.{given} is set but server.{missing} is not: set both (PEM files) for"
            " HTTPS, or neither"
        )
    upstream = UpstreamConfig(
        upstox=_url(u, "upstream.upstox"),
        kotak=_url(u, "upstream.kotak"),
        paradex=_url(u, "upstream.paradex"),
        timeout_s=_float(u, "upstream.timeout_s", 5.0),
        connect_timeout_s=_float(u, "upstream.connect_timeout_s", CONNECT_TIMEOUT_S),
        shared_secret=_str(u, "upstream.shared_secret", "", secret=True),
        upstox_orders=_url(u, "upstream.upstox_orders"),
        kotak_login=_url(u, "upstream.kotak_login"),
        login_relay=_bool(u, "upstream.login_relay", False),
    )
    grid_file = _str(r, "rules.grid_file", "")
    rules = RulesConfig(
        ip_change=_enum(IpChangePolicy, r, "rules.ip_change", IpChangePolicy.ROLLING_7D),
        timezone=_zone(_str(r, "rules.timezone", "Asia/Kolkata")),
        session_logout=_clock(_str(r, "rules.session_logout", "03:30")),
        orders_per_second=_int(r, "rules.orders_per_second", 10, minimum=1),
        rate_limit_mode=_choice(r, "rules.rate_limit_mode", "reject", ("reject", "queue")),
        queue_max_wait_ms=_int(r, "rules.queue_max_wait_ms", 0, minimum=0),
        market_orders=_enum(MarketPolicy, r, "rules.market_orders", MarketPolicy.CONVERT),
        ltp_max_age_s=_float(r, "rules.ltp_max_age_s", 2.0),
        algo_id=_header_value(r, "rules.algo_id", "99999", required=True),
        algo_name=_header_value(r, "rules.algo_name", "", required=False),
        public_ips_only=_bool(r, "rules.public_ips_only", False),
        grid=_grid(grid_file) if grid_file else default_grid(),
        paradex_grid=_bool(r, "rules.paradex_grid", False),
    )
    return Config(
        server=server,
        admin=AdminConfig(token=_str(a, "admin.token", "", secret=True)),
        store=StoreConfig(url=_store_url(_str(st, "store.url", "sqlite:///gateway.db"))),
        upstream=upstream,
        rules=rules,
        instruments=InstrumentsConfig(
            files=tuple(Path(p) for p in _strings(i, "instruments.files")),
            urls=tuple(
                _url({"urls": url}, "instruments.urls") or ""
                for url in _strings(i, "instruments.urls")
            ),
            refresh_at=_clock(_str(i, "instruments.refresh_at", "08:00"), "instruments.refresh_at"),
        ),
        log=LogConfig(
            access=_bool(lg, "log.access", True),
            format=_choice(lg, "log.format", "text", ("text", "json")),
        ),
    )
