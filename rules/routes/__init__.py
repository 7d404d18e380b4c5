"""Route tables: what each path of a dialect is (SPEC §2, §10).

The tables are data (``<dialect>.toml`` beside this module), the one source of truth for a
dialect's routes, so adding a broker is one dialect module plus its table.  A table holds:

- ``[[order]]`` rows: the order routes (IP-enforced, rate-limited, tagged with the algo id).
  Each names its ``action``, the ``body`` shape the dialect decodes (``upstox.place``,
  ``kotak.order``, ``none``, ``json_object``, …) and the ``query`` parameters it takes; the
  upstream target is rebuilt from the template and those parameters alone (SPEC §10).
- ``order_prefixes``: where a write (any method but GET, HEAD, OPTIONS) the table knows neither
  as an order route nor as a read is refused, never forwarded (SPEC §2, "fail closed").
- ``[[read]]`` rows: writes under an order prefix that only read (kotak's order history).
- ``[[public]]`` rows: a method and a path prefix the broker serves without a session; such a
  request is forwarded without a gateway credential and with no account attached.  A public
  prefix may cover no order route, no read row and no order prefix (checked on load).

A template segment ``{name}`` matches one non-empty path segment; a prefix matches whole
segments (``/v2/market/holidays`` covers ``/v2/market/holidays/2026`` but not
``/v2/market/holidaysX``).
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl, quote, urlencode

from rules.decisions import Reason, Refused
from rules.types import Action

__all__ = [
    "Access",
    "Match",
    "Route",
    "RouteTable",
    "load_routes",
    "order_target",
    "parse_routes",
]

# Methods that only read; every other method is a write (PATCH included: fail closed).
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(enum.Enum):
    """How a request that matched no order route is handled."""

    AUTHENTICATED = "authenticated"  # forwarded with authentication only
    PUBLIC = "public"  # forwarded without a gateway credential and without an account
    CLOSED = "closed"  # an unknown write under an order prefix: refused, nothing upstream


@dataclass(frozen=True, slots=True)
class Route:
    dialect: str
    method: str
    template: str
    action: Action
    body: str = "none"  # the body shape the dialect decodes
    query: frozenset[str] = frozenset()  # the query parameters the route takes
    # The dialect's named upstream host the route goes to (SPEC §14: upstox serves place,
    # modify and cancel on its HFT host, ``upstream.upstox_orders``); None: the dialect's own.
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))


def _fill(template: tuple[str, ...], parts: tuple[str, ...]) -> dict[str, str] | None:
    """The ``{name}`` values when ``parts`` matches ``template``, else None."""
    if len(template) != len(parts):
        return None
    params: dict[str, str] = {}
    for want, got in zip(template, parts, strict=True):
        if want.startswith("{") and want.endswith("}"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


def _under(path: str, prefix: str) -> bool:
    stem = prefix.rstrip("/")
    return path == stem or path.startswith(stem + "/")


class RouteTable:
    def __init__(
        self,
        dialect: str,
        routes: list[Route],
        *,
        order_prefixes: Collection[str] = (),
        reads: Collection[tuple[str, str]] = (),
        public: Collection[tuple[str, str]] = (),
    ) -> None:
        self.dialect = dialect
        self.routes = tuple(routes)
        self.order_prefixes = tuple(order_prefixes)
        self.reads = tuple((method, _segments(path)) for method, path in reads)
        self.public = tuple(public)
        self._exact: dict[tuple[str, str], Route] = {}
        self._templated: list[tuple[str, tuple[str, ...], Route]] = []
        for route in routes:
            if "{" in route.template:
                self._templated.append((route.method, _segments(route.template), route))
            else:
                self._exact[(route.method, route.template)] = route
        self._check_public(reads)

    def _check_public(self, reads: Collection[tuple[str, str]]) -> None:
        # A public route is forwarded with no account and no IP check: it must never be able
        # to carry an order, nor read what an account's credential guards.
        guarded = [r.template for r in self.routes] + [path for _, path in reads]
        for method, prefix in self.public:
            clash = [p for p in guarded if _under(p, prefix)]
            clash += [p for p in self.order_prefixes if _under(p, prefix) or _under(prefix, p)]
            if clash:
                raise ValueError(
                    f"{self.dialect} routes: public {method} {prefix} covers {', '.join(clash)}"
                )

    def match(self, method: str, path: str) -> Match | None:
        """The order route for (method, path), or None for a non-order path."""
        route = self._exact.get((method, path))
        if route is not None:
            return Match(route, {})
        parts = _segments(path)
        for route_method, template, route in self._templated:
            if route_method == method:
                params = _fill(template, parts)
                if params is not None:
                    return Match(route, params)
        return None

    def is_order_path(self, path: str) -> bool:
        """Whether any method of this path is an order route (for method checks)."""
        return any(self.match(route.method, path) for route in self.routes)

    def access(self, method: str, path: str) -> Access:
        """How a request that is not an order route is handled (SPEC §2)."""
        if any(m == method and _under(path, prefix) for m, prefix in self.public):
            return Access.PUBLIC
        if method in _READ_METHODS or not any(_under(path, p) for p in self.order_prefixes):
            return Access.AUTHENTICATED
        parts = _segments(path)
        if any(m == method and _fill(t, parts) is not None for m, t in self.reads):
            return Access.AUTHENTICATED
        return Access.CLOSED


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    if not raw_query:
        return []
    try:
        return parse_qsl(raw_query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError as exc:  # UnicodeDecodeError included
        raise Refused(Reason.BAD_REQUEST, f"the query string is malformed: {exc}") from exc


def order_target(
    match: Match, raw_query: str, *, body_fields: Collection[str] = ()
) -> tuple[str, dict[str, str]]:
    """The upstream target of an order route, and its query parameters (SPEC §10).

    The path is the route's template filled with the matched segments, the query string is
    rebuilt from the parameters the route takes.  A repeated parameter, an unknown one, or one
    that names what the path or the body already gives (an order id in two places) is refused,
    so the order id the gateway checked for ownership is the only one the upstream can see.
    """
    route = match.route
    pairs = _query_pairs(raw_query)
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise Refused(Reason.BAD_REQUEST, f"the query parameter {name!r} is given twice")
        if name in match.params:
            raise Refused(
                Reason.BAD_REQUEST, f"{name!r} is given in both the path and the query string"
            )
        if name in body_fields:
            raise Refused(
                Reason.BAD_REQUEST, f"{name!r} is given in both the body and the query string"
            )
        if name not in route.query:
            takes = ", ".join(sorted(route.query)) or "no query parameters"
            raise Refused(
                Reason.BAD_REQUEST,
                f"unknown query parameter {name!r}: {route.method} {route.template} takes {takes}",
            )
    segments = [
        quote(match.params[part[1:-1]], safe="") if part.startswith("{") else part
        for part in _segments(route.template)
    ]
    path = "/" + "/".join(segments)
    return (f"{path}?{urlencode(pairs, quote_via=quote)}" if pairs else path), dict(pairs)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    return list(value)


def _rows(data: Mapping[str, object], key: str, dialect: str) -> list[dict[str, object]]:
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise ValueError(f"{dialect} routes: {key!r} must be an array of tables")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"{dialect} routes: bad entry {entry!r}")
    return entries


def _order(dialect: str, entry: dict[str, object]) -> Route:
    try:
        return Route(
            dialect,
            str(entry["method"]).upper(),
            str(entry["path"]),
            Action(entry["action"]),
            str(entry.get("body", "none")),
            frozenset(_strings(entry.get("query", []), "query")),
            str(entry["host"]) if "host" in entry else None,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{dialect} routes: bad entry {entry!r}: {exc}") from exc


def _pair(dialect: str, entry: dict[str, object], key: str) -> tuple[str, str]:
    try:
        return str(entry["method"]).upper(), str(entry[key])
    except KeyError as exc:
        raise ValueError(f"{dialect} routes: bad entry {entry!r}: missing {exc}") from exc


def parse_routes(dialect: str, data: Mapping[str, object]) -> RouteTable:
    routes = [_order(dialect, entry) for entry in _rows(data, "order", dialect)]
    reads = [_pair(dialect, entry, "path") for entry in _rows(data, "read", dialect)]
    public = [_pair(dialect, entry, "prefix") for entry in _rows(data, "public", dialect)]
    prefixes = _strings(data.get("order_prefixes", []), f"{dialect} routes: order_prefixes")
    return RouteTable(dialect, routes, order_prefixes=prefixes, reads=reads, public=public)


def load_routes(dialect: str) -> RouteTable:
    text = resources.files(__package__).joinpath(f"{dialect}.toml").read_text()
    return parse_routes(dialect, tomllib.loads(text))
