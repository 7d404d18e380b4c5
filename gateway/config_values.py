"""Configuration values, each turned into its working type once, with a message that names its
key when it cannot be (``config.py`` builds the tree from them), and the store URL's parts."""

from __future__ import annotations

import ipaddress
import math
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.grid import Grid, parse_grid
from rules.orders import MarketPolicy
from rules.registry import IpChangePolicy
from rules.types import IPNetwork


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


def _key(name: str) -> str:
    return name.split(".", 1)[1]


def _str(values: dict[str, Any], name: str, default: str, *, secret: bool = False) -> str:
    value = values.get(_key(name), default)
    if not isinstance(value, str):
        shown = f"a {type(value).__name__}" if secret else repr(value)
        raise ConfigError(f"{name} must be a string, got {shown}")
    return value


def _int(
    values: dict[str, Any], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    value = values.get(_key(name), default)
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return number


def _float(values: dict[str, Any], name: str, default: float) -> float:
    value = values.get(_key(name), default)
    try:
        number = (
            float(value) if isinstance(value, str | int) and not isinstance(value, bool) else value
        )
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not isinstance(number, float) or not 0 < number < math.inf:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _bool(values: dict[str, Any], name: str, default: bool) -> bool:
    value = values.get(_key(name), default)
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _list(values: dict[str, Any], name: str) -> list[object]:
    value = values.get(_key(name), [])
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    return value


def _strings(values: dict[str, Any], name: str) -> list[str]:
    strings: list[str] = []
    for item in _list(values, name):
        if not isinstance(item, str):
            raise ConfigError(f"{name} must be a list of strings, got {item!r}")
        strings.append(item)
    return strings


def _header_value(values: dict[str, Any], name: str, default: str, *, required: bool) -> str:
    """A value sent as an HTTP header on every order: printable, and present when required."""
    value = _str(values, name, default)
    if required and not value:
        raise ConfigError(f"{name} must not be empty")
    if not value.isprintable() or not value.isascii():
        raise ConfigError(f"{name} must be printable ASCII, got {value!r}")
    return value


def _choice(values: dict[str, Any], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(values, name, default)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


_E = TypeVar("_E", IpChangePolicy, MarketPolicy)


def _enum(kind: type[_E], values: dict[str, Any], name: str, default: _E) -> _E:
    value = _str(values, name, default.value)
    try:
        return kind(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in kind)
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}") from exc


def _url(values: dict[str, Any], name: str) -> str | None:
    value = values.get(_key(name))
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r} ({exc})") from exc
    if not host:
        raise ConfigError(f"{name} must be an http(s) URL with a host, got {value!r}")
    return value.rstrip("/")


def _tls_path(values: dict[str, Any], name: str) -> Path | None:
    # Only the shape here: whether the PEM files load is checked when the listener is built,
    # so `doctor` can report it among the other checks rather than stop at the config.
    value = _str(values, name, "")
    return Path(value) if value else None


def _network(value: object, name: str) -> IPNetwork:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: {value!r} is not a CIDR network string")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(f"{name}: {value!r} is not a CIDR network ({exc})") from exc


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a directory
        raise ConfigError(f"rules.timezone: unknown time zone {value!r}") from exc


def _clock(value: str, name: str = "rules.session_logout") -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ConfigError(f"{name} must be HH:MM, got {value!r}") from exc


def _grid(path: str) -> Grid:
    try:
        return parse_grid(tomllib.loads(Path(path).read_text()))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"rules.grid_file {path!r}: {exc}") from exc


def _store_url(value: str) -> str:
    if value.startswith("sqlite:///"):
        ok = value != "sqlite:///"
    elif value.startswith(("redis://", "rediss://")):
        try:
            ok = bool(urlsplit(value).hostname)
        except ValueError:
            ok = False
        if ok:
            redis_url_parts(value)  # an empty key prefix fails here, naming the key
    elif value.startswith("redis+sentinel://"):
        try:
            sentinel_parts(value)
        except ValueError as exc:
            raise ConfigError(f"store.url {_redact(value)!r}: {exc}") from exc
        redis_url_parts(value)
        ok = True
    else:
        ok = False
    if not ok:
        raise ConfigError(
            "store.url must be sqlite:///path, redis://host:port/db or"
            f" redis+sentinel://host:port,…/<master>/<db>, got {_redact(value)!r}"
        )
    return value


def redis_url_parts(url: str) -> tuple[str, str]:
    """``redis://host:port/db?prefix=x`` -> (the URL redis-py is given, the key prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    prefix = prefixes[-1] if prefixes else "og:"
    if not prefix:
        raise ConfigError("store.url: prefix must not be empty")
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int]:
    """(sentinels, master name, db) of a ``redis+sentinel://`` URL; ValueError when malformed."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:
        raise ValueError("no Sentinel host")
    sentinels = []
    for host in hosts.split(","):
        name, sep, port = host.rpartition(":")
        if not sep or not name or not port.isdigit():
            raise ValueError(f"Sentinel {host!r} must be host:port")
        sentinels.append((name.strip("[]"), int(port)))
    master, _, db = parts.path.strip("/").partition("/")
    if not master:
        raise ValueError("no master name: redis+sentinel://host:port,…/<master name>/<db>")
    if db and not db.isdigit():
        raise ValueError(f"db {db!r} is not a number")
    return sentinels, master, int(db or 0)


def _redact(url: str) -> str:
    """The URL without its userinfo: a Redis URL may carry a password, kept out of logs."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{path}"
