"""The Upstox analytics token (SPEC §9; Upstox "Analytics Token" page).

- A long-lived (one year), read-only token: GET requests only, never an order route.
- Requests in the account categories (User, Payments, Orders, GTT Orders, Portfolio, Mutual
  Fund, Trade P&L) must come from one of the account's registered static IPs; market data
  (Charges, Margins, Market Quote, Historical Data, Option Chain, Market Information,
  Fundamentals, News, IPO, websocket feeds) may come from anywhere.
- The path → category table is data (``routes/analytics.toml``).  A path the table does not
  know is treated as an account API: it needs a registered IP (fail closed).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from rules.decisions import Reason, Refused
from rules.ip import canonical
from rules.sessions import STATIC_IP_BLOCKED
from rules.types import IPAddress

__all__ = ["Category", "CategoryTable", "admit_analytics", "default_table", "parse_table"]


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    registered_ip: bool


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


class CategoryTable:
    def __init__(self, prefixes: Mapping[str, Category]) -> None:
        self._prefixes = {_segments(prefix): category for prefix, category in prefixes.items()}
        self._longest = max((len(p) for p in self._prefixes), default=0)

    def lookup(self, path: str) -> Category | None:
        """The category of the longest prefix of ``path`` (in whole segments), if any."""
        parts = _segments(path)
        for length in range(min(len(parts), self._longest), 0, -1):
            category = self._prefixes.get(parts[:length])
            if category is not None:
                return category
        return None


def _names(data: Mapping[str, object], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"analytics categories: {key!r} must be a list of category names")
    return list(value)


def parse_table(data: Mapping[str, object]) -> CategoryTable:
    guarded, open_ = _names(data, "registered_ip"), _names(data, "open")
    both = set(guarded) & set(open_)
    if both:
        raise ValueError(f"analytics categories: {sorted(both)} listed both ways")
    categories = {name: Category(name, True) for name in guarded}
    categories.update({name: Category(name, False) for name in open_})
    prefixes = data.get("prefixes")
    if not isinstance(prefixes, dict):
        raise ValueError("analytics categories: 'prefixes' must be a table of path = category")
    table: dict[str, Category] = {}
    for prefix, name in prefixes.items():
        if not prefix.startswith("/") or name not in categories:
            raise ValueError(f"analytics categories: bad prefix {prefix!r} = {name!r}")
        table[prefix] = categories[name]
    return CategoryTable(table)


@functools.cache
def default_table() -> CategoryTable:
    text = resources.files("rules.routes").joinpath("analytics.toml").read_text()
    return parse_table(tomllib.loads(text))


def admit_analytics(
    method: str,
    path: str,
    *,
    client_ip: IPAddress,
    registered: frozenset[IPAddress],
    table: CategoryTable,
) -> Category | None:
    """Refuse what an analytics token may not do; the category of the path when admitted."""
    if method != "GET":
        raise Refused(
            Reason.READ_ONLY_TOKEN,
            f"the analytics token is read-only: GET requests only, not {method}",
        )
    category = table.lookup(path)
    if category is not None and not category.registered_ip:
        return category
    client_ip = canonical(client_ip)
    if client_ip not in registered:
        what = "an API outside the analytics categories" if category is None else category.name
        raise Refused(
            Reason.IP_NOT_REGISTERED,
            f"{STATIC_IP_BLOCKED}: with the analytics token, {what} requests must come from a"
            f" registered static IP, not {client_ip}",
        )
    return category
