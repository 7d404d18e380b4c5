"""Route tables: which paths of a dialect are order routes (SPEC §2).

The tables are data (``<dialect>.toml`` beside this module) so adding a broker is one dialect
module plus its table.  A template segment ``{name}`` matches one non-empty path segment.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from rules.types import Action


@dataclass(frozen=True, slots=True)
class Route:
    dialect: str
    method: str
    template: str
    action: Action


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]


class RouteTable:
    def __init__(self, dialect: str, routes: list[Route]) -> None:
        self.dialect = dialect
        self.routes = tuple(routes)
        self._exact: dict[tuple[str, str], Route] = {}
        self._templated: list[tuple[str, tuple[str, ...], Route]] = []
        for route in routes:
            if "{" in route.template:
                parts = tuple(route.template.strip("/").split("/"))
                self._templated.append((route.method, parts, route))
            else:
                self._exact[(route.method, route.template)] = route

    def match(self, method: str, path: str) -> Match | None:
        """The order route for (method, path), or None for a non-order path."""
        route = self._exact.get((method, path))
        if route is not None:
            return Match(route, {})
        parts = path.strip("/").split("/")
        for route_method, template, route in self._templated:
            if route_method != method or len(template) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(template, parts, strict=True):
                if want.startswith("{") and want.endswith("}"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return Match(route, params)
        return None

    def is_order_path(self, path: str) -> bool:
        """Whether any method of this path is an order route (for method checks)."""
        return any(self.match(route.method, path) for route in self.routes)


def parse_routes(dialect: str, data: dict[str, object]) -> RouteTable:
    entries = data.get("order", [])
    if not isinstance(entries, list):
        raise ValueError(f"{dialect} routes: 'order' must be an array of tables")
    routes = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"{dialect} routes: bad entry {entry!r}")
        try:
            routes.append(
                Route(
                    dialect,
                    str(entry["method"]).upper(),
                    str(entry["path"]),
                    Action(entry["action"]),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{dialect} routes: bad entry {entry!r}: {exc}") from exc
    return RouteTable(dialect, routes)


def load_routes(dialect: str) -> RouteTable:
    text = resources.files(__package__).joinpath(f"{dialect}.toml").read_text()
    return parse_routes(dialect, tomllib.loads(text))
