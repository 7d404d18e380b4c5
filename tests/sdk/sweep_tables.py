"""The SDK sweep (issue 16): every public method of both official clients, as a table.

Each row names one SDK method, how a user calls it and what the gateway must do with it:

- ``same``: what reaches the upstream through the gateway (method, path, query, body) is what
  reaches it when the SDK talks to the upstream directly;
- ``converted``: a MARKET order, arriving as a LIMIT order at the protection grid's price
  (SPEC §6); it is compared after applying that conversion to the direct arrival;
- ``gateway``: the gateway answers the call itself (its static-IP API, its login), nothing goes
  upstream, and the SDK reads the answer without error;
- ``local``: the SDK answers from memory and sends nothing, directly or through the gateway;
- ``skip``: not called, for the written reason.

``public`` rows are the routes SPEC §2 makes public: called through the gateway with no
gateway session, exactly as the SDK calls them.

The tables are checked against the installed SDKs (``test_sweep_tables.py``): an SDK upgrade
that adds a method fails until the method has a row.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Expect(enum.Enum):
    SAME = "same"
    CONVERTED = "converted"
    GATEWAY = "gateway"
    LOCAL = "local"
    SKIP = "skip"


@dataclass(frozen=True)
class Ctx:
    """What a row's call may need from the logged-in trader."""

    user_id: str
    api_key: str
    api_secret: str
    ip: str


Call = Callable[[Any, Ctx], Any]
Rewrite = Callable[[Any], Any]
Check = Callable[[Any, Ctx], bool]


@dataclass(frozen=True)
class Row:
    owner: str  # the SDK class: "OrderApi", "NeoAPI"
    method: str
    expect: Expect
    call: Call | None = None
    public: bool = False
    # converted rows: the direct arrival's body -> the body the gateway must forward
    convert: Rewrite | None = field(default=None, repr=False)
    # gateway rows: what the SDK must have read from the gateway's own answer
    check: Check | None = field(default=None, repr=False)
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.method}"


# SPEC §6 for RELIANCE at an LTP of 1401.5: EQ above 500 is a 0.5% band, BUY = 1401.5 + 7.0075
# = 1408.5075, snapped toward the LTP on the 0.10 tick.
RELIANCE_LTP = Decimal("1401.5")
RELIANCE_BUY_LIMIT = Decimal("1408.5")


@dataclass(frozen=True)
class A:
    """The arguments of a row's call, when it needs nothing from the trader: ``A(x, k=v)``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", kwargs)


def call(owner: str, method: str, expect: Expect, args: A, **kw: Any) -> Row:
    """A row calling ``method`` with ``args``."""

    def invoke(api: Any, ctx: Ctx) -> Any:
        return getattr(api, method)(*args.args, **args.kwargs)

    return Row(owner, method, expect, invoke, **kw)


def _skip_name(name: str) -> bool:
    # ``foo_with_http_info`` (and the websocket module's ``foo_with_http_info_v3``) sends the
    # same request as ``foo`` and only returns the status and headers too: ``foo``'s row covers it.
    return name.startswith("_") or "_with_http_info" in name


def public_methods(cls: type) -> set[str]:
    return {
        name for name, member in inspect.getmembers(cls, inspect.isfunction) if not _skip_name(name)
    }


def upstox_methods() -> set[str]:
    """``Class.method`` for every public method of every API class in ``upstox_client.api``
    (``OrderApiV3`` included, though its name does not end in ``Api``; ``LoginApi`` too)."""
    package = importlib.import_module("upstox_client.api")
    names: set[str] = set()
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"upstox_client.api.{module_info.name}")
        for class_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                names |= {f"{class_name}.{m}" for m in public_methods(cls)}
    return names


def kotak_methods() -> set[str]:
    neo_api = importlib.import_module("neo_api_client")
    return {f"NeoAPI.{m}" for m in public_methods(neo_api.NeoAPI)}


def by_expect(rows: Iterable[Row], expect: Expect) -> list[str]:
    return sorted(row.name for row in rows if row.expect is expect)


# The README's "SDK calls through the gateway" section is generated from the tables:
# ``python -m tests.sdk.sweep_tables`` prints it, and ``test_sweep_tables.py`` checks the README
# holds exactly that text.
README_HEADING = "## SDK calls through the gateway"
_GROUPS: list[tuple[str, Callable[[Row], bool]]] = [
    ("Pass through unchanged", lambda r: r.expect is Expect.SAME and not r.public),
    ("Public, no session (SPEC §2), unchanged", lambda r: r.expect is Expect.SAME and r.public),
    (
        "Converted, MARKET to LIMIT at the grid price (SPEC §6)",
        lambda r: r.expect is Expect.CONVERTED,
    ),
    ("Answered by the gateway itself", lambda r: r.expect is Expect.GATEWAY),
    ("Answered by the SDK from memory, nothing sent", lambda r: r.expect is Expect.LOCAL),
]


def readme_lines(title: str, rows: Iterable[Row]) -> list[str]:
    rows = sorted(rows, key=lambda r: (r.owner, r.method))
    lines = [f"**{title}**", ""]
    for label, member in _GROUPS:
        chosen = [r for r in rows if member(r)]
        if not chosen:
            continue
        lines.append(f"- {label}:")
        owners = dict.fromkeys(r.owner for r in chosen)
        for owner in owners:
            methods = ", ".join(f"`{r.method}`" for r in chosen if r.owner == owner)
            lines.append(f"  - `{owner}`: {methods}")
    skipped = [r for r in rows if r.expect is Expect.SKIP]
    if skipped:
        lines.append("- Not called:")
        lines.extend(f"  - `{r.name}`: {r.reason}" for r in skipped)
    return [*lines, ""]


def readme_section() -> list[str]:
    from .kotak_table import ROWS as KOTAK
    from .upstox_table import ROWS as UPSTOX

    intro = [
        README_HEADING,
        "",
        "Every public method of both official SDKs is called by the test suite twice, straight",
        "at a recording upstream and through the gateway as a trader from its registered IP, and",
        "what arrives is compared (method, path, query, body): `tests/sdk/test_upstox_sweep.py`,",
        "`tests/sdk/test_kotak_sweep.py`, from the tables in `tests/sdk/upstox_table.py` and",
        "`tests/sdk/kotak_table.py`. A test fails when an installed SDK has a method the tables",
        "lack. `*_with_http_info` variants send the same request as the method they wrap. This",
        "list is generated from the tables (`python -m tests.sdk.sweep_tables`).",
        "",
    ]
    return [
        *intro,
        *readme_lines("Upstox (`upstox-python-sdk`, module `upstox_client`)", UPSTOX),
        *readme_lines("Kotak Neo (`kotakneoapi`, module `neo_api_client`, class `NeoAPI`)", KOTAK),
    ]


if __name__ == "__main__":
    os.environ.setdefault("NEO_LOG_FILE_ENABLED", "false")  # no logs/ from importing the SDK
    # Through the package: run as __main__ this module's Expect is not the tables' Expect.
    print("\n".join(importlib.import_module("tests.sdk.sweep_tables").readme_section()))
