"""The market-order protection grid and limit pricing (SPEC §6).

A MARKET order is forwarded as a LIMIT order and an SL-M order as SL, priced from a reference
``p`` (the LTP, or the SL-M trigger) and a band from the grid, shipped as data in
``grid.toml`` and replaceable by configuration:

- EQ and FUT: p < 100: 2% · 100 ≤ p ≤ 500: 1% · p > 500: 0.5%
- OPT: p < 1: ₹0.10 · 1 ≤ p ≤ 5: 10% · 5 < p ≤ 10: 5% · 10 < p ≤ 100: 3% · 100 < p ≤ 500: 2%
  · p > 500: 1%

BUY limit = p + band, SELL limit = p − band, in Decimal, then snapped to the instrument's tick
toward p so it never leaves the band.  A BUY is never below p and a SELL never above it (when
no tick multiple lies inside the band, the nearest one on the safe side of p is used), and a
SELL that would fall below one tick is priced at one tick, the exchange's minimum price.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from rules.decisions import Reason, Refused
from rules.types import Instrument, InstrumentKind, Side

__all__ = ["Grid", "Protection", "Tier", "band", "default_grid", "parse_grid", "protect"]

_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Tier:
    """Covers prices up to ``limit`` (``p <= limit`` if ``inclusive`` else ``p < limit``;
    None: every price); the band is ``percent`` of p, or ``absolute`` rupees."""

    limit: Decimal | None
    inclusive: bool = False
    percent: Decimal | None = None
    absolute: Decimal | None = None

    def covers(self, p: Decimal) -> bool:
        if self.limit is None:
            return True
        return p <= self.limit if self.inclusive else p < self.limit

    def amount(self, p: Decimal) -> Decimal:
        if self.absolute is not None:
            return self.absolute
        assert self.percent is not None
        return p * self.percent / _HUNDRED


@dataclass(frozen=True, slots=True)
class Grid:
    eq: tuple[Tier, ...]
    fut: tuple[Tier, ...]
    opt: tuple[Tier, ...]

    def tiers(self, kind: InstrumentKind) -> tuple[Tier, ...]:
        if kind is InstrumentKind.EQ:
            return self.eq
        if kind is InstrumentKind.FUT:
            return self.fut
        return self.opt


@dataclass(frozen=True, slots=True)
class Protection:
    limit_price: Decimal
    reference: Decimal
    band: Decimal


def _number(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'{where}: expected a number written as a string, e.g. "0.5"')
    text = str(value)
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is not a plain non-negative decimal number")
    number = Decimal(text)
    if number == 0:
        raise ValueError(f"{where}: must be greater than zero")
    return number


def _tier(data: object, where: str, *, last: bool) -> Tier:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a table")
    unknown = set(data) - {"below", "upto", "percent", "absolute"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(map(str, unknown))[0]!r}")
    if "below" in data and "upto" in data:
        raise ValueError(f"{where}: give one of below/upto, not both")
    if last and ("below" in data or "upto" in data):
        raise ValueError(f"{where}: the last tier must be open (no below/upto)")
    if not last and "below" not in data and "upto" not in data:
        raise ValueError(f"{where}: needs below or upto (only the last tier is open)")
    if ("percent" in data) == ("absolute" in data):
        raise ValueError(f"{where}: give exactly one of percent/absolute")
    limit = None
    inclusive = "upto" in data
    if not last:
        key = "upto" if inclusive else "below"
        limit = _number(data[key], f"{where}.{key}")
    if "percent" in data:
        percent = _number(data["percent"], f"{where}.percent")
        if percent > _HUNDRED:
            raise ValueError(f"{where}.percent: must be at most 100")
        return Tier(limit, inclusive, percent=percent)
    return Tier(limit, inclusive, absolute=_number(data["absolute"], f"{where}.absolute"))


def _tiers(data: Mapping[str, object], kind: InstrumentKind) -> tuple[Tier, ...]:
    where = f"grid.{kind.value}"
    if kind.value not in data:
        raise ValueError(f"{where}: missing; the grid needs EQ, FUT and OPT")
    rows = data[kind.value]
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{where}: expected a non-empty array of tiers")
    tiers = tuple(
        _tier(row, f"{where}[{i}]", last=i == len(rows) - 1) for i, row in enumerate(rows)
    )
    limits = [t.limit for t in tiers if t.limit is not None]
    for i in range(1, len(limits)):
        if limits[i] <= limits[i - 1]:
            raise ValueError(f"{where}[{i}]: tiers must be in ascending order of price")
    return tiers


def parse_grid(data: Mapping[str, object]) -> Grid:
    """A grid from TOML-shaped data; raises ValueError naming the bad key."""
    unknown = set(data) - {kind.value for kind in InstrumentKind}
    if unknown:
        raise ValueError(f"grid.{sorted(unknown)[0]}: unknown instrument kind")
    return Grid(
        eq=_tiers(data, InstrumentKind.EQ),
        fut=_tiers(data, InstrumentKind.FUT),
        opt=_tiers(data, InstrumentKind.OPT),
    )


def default_grid() -> Grid:
    text = resources.files("rules").joinpath("grid.toml").read_text(encoding="utf-8")
    return parse_grid(tomllib.loads(text))


def band(grid: Grid, kind: InstrumentKind, p: Decimal) -> Decimal:
    """The band in rupees for reference price ``p``."""
    tiers = grid.tiers(kind)
    tier = next((t for t in tiers if t.covers(p)), tiers[-1])
    return tier.amount(p)


def _floor(x: Decimal, tick: Decimal) -> Decimal:
    """For x > 0 only: Decimal ``//`` truncates toward zero, which is floor there."""
    return (x // tick) * tick


def _ceil(x: Decimal, tick: Decimal) -> Decimal:
    quotient, remainder = divmod(x, tick)  # truncated: remainder has the sign of x
    if remainder > 0:
        quotient += 1
    return quotient * tick


def protect(grid: Grid, instrument: Instrument, side: Side, reference: Decimal) -> Protection:
    if not reference.is_finite() or reference <= 0:
        raise Refused(
            Reason.LTP_UNAVAILABLE,
            f"reference price {reference} for {instrument.key} is not a positive price; "
            "market orders are converted to limit orders and need one",
        )
    tick = instrument.tick_size
    if not tick.is_finite() or tick <= 0:
        raise Refused(
            Reason.LTP_UNAVAILABLE,
            f"instrument {instrument.key} has no valid tick size in the instrument master",
        )
    amount = band(grid, instrument.kind, reference)
    if side is Side.BUY:
        limit = _floor(reference + amount, tick)
        if limit < reference:
            limit = _ceil(reference, tick)
    else:
        limit = _ceil(reference - amount, tick)
        if limit > reference:
            limit = _floor(reference, tick)
        limit = max(limit, tick)
    return Protection(limit_price=limit, reference=reference, band=amount)
