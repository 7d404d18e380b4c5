from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from rules.decisions import Reason, Refused
from rules.grid import Grid, Protection, Tier, band, default_grid, parse_grid, protect
from rules.types import Instrument, InstrumentKind, Side

GRID = default_grid()
EQ, FUT, OPT = InstrumentKind.EQ, InstrumentKind.FUT, InstrumentKind.OPT
BUY, SELL = Side.BUY, Side.SELL
D = Decimal


def inst(kind: InstrumentKind, tick: str) -> Instrument:
    return Instrument(key=f"NSE_{kind.value}|TEST", kind=kind, tick_size=D(tick))


@pytest.mark.parametrize(
    ("kind", "p", "expected"),
    [
        # EQ and FUT: p < 100: 2% · 100 <= p <= 500: 1% · p > 500: 0.5%
        (EQ, "0.05", "0.001"),
        (EQ, "50", "1"),
        (EQ, "99.99", "1.9998"),
        (EQ, "100", "1"),
        (EQ, "100.01", "1.0001"),
        (EQ, "499.99", "4.9999"),
        (EQ, "500", "5"),
        (EQ, "500.01", "2.50005"),
        (EQ, "2500", "12.5"),
        (FUT, "99.99", "1.9998"),
        (FUT, "100", "1"),
        (FUT, "500", "5"),
        (FUT, "500.01", "2.50005"),
        # OPT: p < 1: 0.10 · 1-5: 10% · 5-10: 5% · 10-100: 3% · 100-500: 2% · > 500: 1%
        (OPT, "0.05", "0.10"),
        (OPT, "0.99", "0.10"),
        (OPT, "1", "0.1"),
        (OPT, "1.01", "0.101"),
        (OPT, "4.99", "0.499"),
        (OPT, "5", "0.5"),
        (OPT, "5.01", "0.2505"),
        (OPT, "9.99", "0.4995"),
        (OPT, "10", "0.5"),
        (OPT, "10.01", "0.3003"),
        (OPT, "99.99", "2.9997"),
        (OPT, "100", "3"),
        (OPT, "100.01", "2.0002"),
        (OPT, "499.99", "9.9998"),
        (OPT, "500", "10"),
        (OPT, "500.01", "5.0001"),
        (OPT, "1200", "12"),
    ],
)
def test_band(kind: InstrumentKind, p: str, expected: str) -> None:
    assert band(GRID, kind, D(p)) == D(expected)


@pytest.mark.parametrize(
    ("kind", "tick", "p", "buy", "sell"),
    [
        # EQ boundaries at 100 and 500, ticks 0.01 and 0.05
        (EQ, "0.01", "99.99", "101.98", "98.00"),
        (EQ, "0.05", "99.95", "101.90", "98.00"),
        (EQ, "0.05", "100", "101.00", "99.00"),
        (EQ, "0.01", "100.01", "101.01", "99.01"),
        (EQ, "0.05", "100.05", "101.05", "99.05"),
        (EQ, "0.01", "499.99", "504.98", "495.00"),
        (EQ, "0.05", "500", "505.00", "495.00"),
        (EQ, "0.01", "500.01", "502.51", "497.51"),
        (EQ, "0.05", "500.05", "502.55", "497.55"),
        # EQ at the option boundaries too
        (EQ, "0.01", "0.99", "1.00", "0.98"),
        (EQ, "0.01", "1", "1.02", "0.98"),
        (EQ, "0.01", "1.01", "1.03", "0.99"),
        (EQ, "0.01", "4.99", "5.08", "4.90"),
        (EQ, "0.05", "5", "5.10", "4.90"),
        (EQ, "0.01", "5.01", "5.11", "4.91"),
        (EQ, "0.05", "10", "10.20", "9.80"),
        (EQ, "0.01", "10.01", "10.21", "9.81"),
        # ticks 0.10 and 1.00
        (EQ, "0.10", "2500", "2512.50", "2487.50"),
        (EQ, "1.00", "2500", "2512", "2488"),
        (EQ, "0.05", "2500", "2512.50", "2487.50"),
        (FUT, "0.10", "500.5", "503.0", "498.0"),
        (FUT, "0.05", "24000", "24120.00", "23880.00"),
        (FUT, "0.05", "99.95", "101.90", "98.00"),
        # band narrower than one tick: the limit is the LTP itself
        (EQ, "0.05", "1.00", "1.00", "1.00"),
        (EQ, "1.00", "150", "151", "149"),
        (EQ, "1.00", "50", "51", "49"),
        # OPT below 1: absolute 0.10; a SELL never goes under one tick
        (OPT, "0.05", "0.05", "0.15", "0.05"),
        (OPT, "0.05", "0.10", "0.20", "0.05"),
        (OPT, "0.05", "0.15", "0.25", "0.05"),
        (OPT, "0.05", "0.20", "0.30", "0.10"),
        (OPT, "0.05", "0.50", "0.60", "0.40"),
        (OPT, "0.05", "0.95", "1.05", "0.85"),
        (OPT, "0.01", "0.99", "1.09", "0.89"),
        (OPT, "0.05", "1", "1.10", "0.90"),
        (OPT, "0.01", "1.01", "1.11", "0.91"),
        (OPT, "0.05", "1.05", "1.15", "0.95"),  # 1.155 / 0.945 snapped toward p
        (OPT, "0.01", "4.99", "5.48", "4.50"),
        (OPT, "0.05", "5", "5.50", "4.50"),
        (OPT, "0.01", "5.01", "5.26", "4.76"),
        (OPT, "0.05", "5.05", "5.30", "4.80"),
        (OPT, "0.01", "9.99", "10.48", "9.50"),
        (OPT, "0.05", "10", "10.50", "9.50"),
        (OPT, "0.01", "10.01", "10.31", "9.71"),
        (OPT, "0.05", "10.05", "10.35", "9.75"),
        (OPT, "0.01", "99.99", "102.98", "97.00"),
        (OPT, "0.05", "100", "103.00", "97.00"),
        (OPT, "0.01", "100.01", "102.01", "98.01"),
        (OPT, "0.05", "100.05", "102.05", "98.05"),
        (OPT, "0.01", "499.99", "509.98", "490.00"),
        (OPT, "0.05", "500", "510.00", "490.00"),
        (OPT, "0.01", "500.01", "505.01", "495.01"),
        (OPT, "0.05", "500.05", "505.05", "495.05"),
        (OPT, "0.10", "1200", "1212.00", "1188.00"),
        (OPT, "1.00", "1200", "1212", "1188"),
    ],
)
def test_protect(kind: InstrumentKind, tick: str, p: str, buy: str, sell: str) -> None:
    instrument = inst(kind, tick)
    bought = protect(GRID, instrument, BUY, D(p))
    sold = protect(GRID, instrument, SELL, D(p))
    assert bought == Protection(D(buy), D(p), band(GRID, kind, D(p)))
    assert sold == Protection(D(sell), D(p), band(GRID, kind, D(p)))
    assert bought.limit_price % D(tick) == 0
    assert sold.limit_price % D(tick) == 0


@pytest.mark.parametrize(
    ("tick", "p", "side", "expected"),
    [
        # An LTP off the tick grid with no tick multiple inside the band: the nearest one on
        # the safe side of p (a BUY never below p, a SELL never above p).
        ("0.05", "1.02", BUY, "1.05"),
        ("0.05", "1.04", SELL, "1.00"),
        ("0.05", "1.02", SELL, "1.00"),
        ("0.05", "1.04", BUY, "1.05"),
        ("1.00", "150.5", BUY, "152"),
        ("1.00", "150.5", SELL, "149"),
        # An LTP below one tick: the SELL is still priced at one tick.
        ("0.05", "0.03", SELL, "0.05"),
        ("0.05", "0.03", BUY, "0.10"),
    ],
)
def test_protect_off_grid_reference(tick: str, p: str, side: Side, expected: str) -> None:
    kind = EQ if D(p) >= 1 else OPT
    assert protect(GRID, inst(kind, tick), side, D(p)).limit_price == D(expected)


@pytest.mark.parametrize("kind", list(InstrumentKind))
@pytest.mark.parametrize("tick", ["0.05", "0.01", "0.10", "1.00"])
def test_protect_invariants_over_a_price_sweep(kind: InstrumentKind, tick: str) -> None:
    """On-grid prices: limits are tick multiples inside the band, on the right side of p."""
    step = D(tick)
    prices = [step * n for n in range(1, 400)]
    prices += [D(p) for p in ("1", "5", "10", "100", "500", "1000", "2500.5", "99999")]
    for p in prices:
        p = (p // step) * step or step
        amount = band(GRID, kind, p)
        buy = protect(GRID, inst(kind, tick), BUY, p).limit_price
        sell = protect(GRID, inst(kind, tick), SELL, p).limit_price
        assert buy % step == 0
        assert sell % step == 0
        assert p <= buy <= p + amount, (p, buy)
        assert sell <= p, (p, sell)
        assert sell >= p - amount or sell == step, (p, sell)


@pytest.mark.parametrize("reference", ["0", "-1", "-0.05", "NaN", "Infinity", "sNaN"])
def test_protect_needs_a_positive_reference(reference: str) -> None:
    with pytest.raises(Refused) as info:
        protect(GRID, inst(EQ, "0.05"), BUY, D(reference))
    assert info.value.refusal.reason is Reason.LTP_UNAVAILABLE
    assert "NSE_EQ|TEST" in info.value.refusal.message


@pytest.mark.parametrize("tick", ["0", "-0.05", "NaN", "Infinity"])
def test_protect_needs_a_tick(tick: str) -> None:
    with pytest.raises(Refused) as info:
        protect(GRID, inst(EQ, tick), SELL, D("100"))
    assert info.value.refusal.reason is Reason.LTP_UNAVAILABLE
    assert "tick size" in info.value.refusal.message


# -- the grid as data --------------------------------------------------------------------------


def test_default_grid_shape() -> None:
    assert GRID.eq == GRID.fut
    assert GRID.eq == (
        Tier(D("100"), inclusive=False, percent=D("2")),
        Tier(D("500"), inclusive=True, percent=D("1")),
        Tier(None, percent=D("0.5")),
    )
    assert GRID.opt[0] == Tier(D("1"), inclusive=False, absolute=D("0.10"))
    assert [t.limit for t in GRID.opt] == [D(1), D(5), D(10), D(100), D(500), None]
    assert GRID.tiers(EQ) is GRID.eq
    assert GRID.tiers(FUT) is GRID.fut
    assert GRID.tiers(OPT) is GRID.opt


SIMPLE = [{"percent": "1"}]


def test_parse_grid_accepts_toml_integers_and_replacement_grids() -> None:
    grid = parse_grid(
        tomllib.loads(
            """
            EQ = [{below = 50, percent = 3}, {percent = "0.25"}]
            FUT = [{percent = 1}]
            OPT = [{upto = "2", absolute = "0.05"}, {percent = 100}]
            """
        )
    )
    assert grid == Grid(
        eq=(Tier(D(50), False, percent=D(3)), Tier(None, percent=D("0.25"))),
        fut=(Tier(None, percent=D(1)),),
        opt=(Tier(D(2), True, absolute=D("0.05")), Tier(None, percent=D(100))),
    )
    assert band(grid, EQ, D(50)) == D("0.125")
    assert band(grid, EQ, D("49.99")) == D("1.4997")
    assert band(grid, OPT, D(2)) == D("0.05")
    assert band(grid, OPT, D("2.01")) == D("2.01")
    # 100% on a SELL lands on zero: priced at one tick
    assert protect(grid, inst(OPT, "0.05"), SELL, D(3)).limit_price == D("0.05")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"FUT": SIMPLE, "OPT": SIMPLE}, "grid.EQ: missing"),
        ({"EQ": SIMPLE, "OPT": SIMPLE}, "grid.FUT: missing"),
        ({"EQ": SIMPLE, "FUT": SIMPLE}, "grid.OPT: missing"),
        ({"EQ": SIMPLE, "FUT": SIMPLE, "OPT": SIMPLE, "CUR": SIMPLE}, "grid.CUR: unknown"),
        ({"EQ": [], "FUT": SIMPLE, "OPT": SIMPLE}, "grid.EQ: expected a non-empty array"),
        ({"EQ": {"percent": "1"}, "FUT": SIMPLE, "OPT": SIMPLE}, "grid.EQ: expected a non"),
        ({"EQ": ["1%"], "FUT": SIMPLE, "OPT": SIMPLE}, "grid.EQ[0]: expected a table"),
        ({"EQ": [{"pct": "1"}], "FUT": SIMPLE, "OPT": SIMPLE}, "grid.EQ[0]: unknown key 'pct'"),
        (
            {
                "EQ": [{"below": "1", "upto": "1", "percent": "1"}, *SIMPLE],
                "FUT": SIMPLE,
                "OPT": SIMPLE,
            },
            "grid.EQ[0]: give one of below/upto",
        ),
        (
            {"EQ": [{"below": "1", "percent": "1"}], "FUT": SIMPLE, "OPT": SIMPLE},
            "grid.EQ[0]: the last tier must be open",
        ),
        (
            {"EQ": [{"upto": "1", "percent": "1"}], "FUT": SIMPLE, "OPT": SIMPLE},
            "grid.EQ[0]: the last tier",
        ),
        (
            {"EQ": [*SIMPLE, *SIMPLE], "FUT": SIMPLE, "OPT": SIMPLE},
            "grid.EQ[0]: needs below or upto",
        ),
        (
            {"EQ": [{}], "FUT": SIMPLE, "OPT": SIMPLE},
            "grid.EQ[0]: give exactly one of percent/absolute",
        ),
        (
            {"EQ": [{"percent": "1", "absolute": "1"}], "FUT": SIMPLE, "OPT": SIMPLE},
            "grid.EQ[0]: give exactly one",
        ),
        (
            {"EQ": SIMPLE, "FUT": [{"percent": 1.5}], "OPT": SIMPLE},
            "grid.FUT[0].percent: expected a number",
        ),
        (
            {"EQ": SIMPLE, "FUT": [{"percent": True}], "OPT": SIMPLE},
            "grid.FUT[0].percent: expected",
        ),
        (
            {"EQ": SIMPLE, "FUT": [{"percent": None}], "OPT": SIMPLE},
            "grid.FUT[0].percent: expected",
        ),
        ({"EQ": SIMPLE, "FUT": [{"percent": "1%"}], "OPT": SIMPLE}, "grid.FUT[0].percent: '1%'"),
        ({"EQ": SIMPLE, "FUT": [{"percent": "-1"}], "OPT": SIMPLE}, "grid.FUT[0].percent: '-1'"),
        ({"EQ": SIMPLE, "FUT": [{"percent": -1}], "OPT": SIMPLE}, "grid.FUT[0].percent: '-1'"),
        ({"EQ": SIMPLE, "FUT": [{"percent": "NaN"}], "OPT": SIMPLE}, "grid.FUT[0].percent: 'NaN'"),
        ({"EQ": SIMPLE, "FUT": [{"percent": "1e2"}], "OPT": SIMPLE}, "grid.FUT[0].percent: '1e2'"),
        ({"EQ": SIMPLE, "FUT": [{"percent": " 1"}], "OPT": SIMPLE}, "grid.FUT[0].percent"),
        ({"EQ": SIMPLE, "FUT": [{"percent": "1_0"}], "OPT": SIMPLE}, "grid.FUT[0].percent"),
        ({"EQ": SIMPLE, "FUT": [{"percent": ".5"}], "OPT": SIMPLE}, "grid.FUT[0].percent"),
        (
            {"EQ": SIMPLE, "FUT": [{"percent": "0"}], "OPT": SIMPLE},
            "grid.FUT[0].percent: must be greater",
        ),
        (
            {"EQ": SIMPLE, "FUT": [{"percent": "100.01"}], "OPT": SIMPLE},
            "grid.FUT[0].percent: must be at most 100",
        ),
        (
            {"EQ": SIMPLE, "FUT": SIMPLE, "OPT": [{"absolute": "0.00"}]},
            "grid.OPT[0].absolute: must be greater",
        ),
        (
            {"EQ": SIMPLE, "FUT": SIMPLE, "OPT": [{"below": "0", "percent": "1"}, *SIMPLE]},
            "grid.OPT[0].below: must be greater",
        ),
        (
            {"EQ": SIMPLE, "FUT": SIMPLE, "OPT": [{"upto": "x", "percent": "1"}, *SIMPLE]},
            "grid.OPT[0].upto: 'x'",
        ),
        (
            {
                "EQ": SIMPLE,
                "FUT": SIMPLE,
                "OPT": [{"upto": "5", "percent": "1"}, {"below": "1", "percent": "1"}, *SIMPLE],
            },
            "grid.OPT[1]: tiers must be in ascending order",
        ),
        (
            {
                "EQ": SIMPLE,
                "FUT": SIMPLE,
                "OPT": [{"below": "5", "percent": "1"}, {"upto": "5", "percent": "1"}, *SIMPLE],
            },
            "grid.OPT[1]: tiers must be in ascending order",
        ),
    ],
)
def test_parse_grid_refuses(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=r"^grid\.") as info:
        parse_grid(data)
    assert fragment in str(info.value)
