from __future__ import annotations

import gzip
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from gateway.instruments import (
    InstrumentMaster,
    load_kotak_csv,
    load_master,
    load_upstox_json,
    sample_data,
    sample_master,
)
from rules.types import Instrument, InstrumentKind

KOTAK_HEADER = "pSymbol,pExchSeg,pInstType,pTrdSymbol,pOptionType,pISIN,lLotSize,dTickSize \n"


def upstox_row(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "segment": "NSE_EQ",
        "instrument_key": "NSE_EQ|INE002A01018",
        "instrument_type": "EQ",
        "trading_symbol": "RELIANCE",
        "exchange_token": "2885",
        "lot_size": 1,
        "tick_size": 5.0,
    }
    row.update(fields)
    return row


def upstox_bytes(*rows: Mapping[str, object]) -> bytes:
    return orjson.dumps(list(rows))


def test_upstox_row_becomes_instrument() -> None:
    [instrument] = load_upstox_json(upstox_bytes(upstox_row()))
    assert instrument == Instrument(
        key="NSE_EQ|INE002A01018",
        kind=InstrumentKind.EQ,
        tick_size=Decimal("0.05"),
        symbol="RELIANCE",
        exchange="NSE_EQ",
        lot_size=1,
        token="2885",
    )


@pytest.mark.parametrize(
    ("tick", "rupees"),
    [(5.0, "0.05"), (5, "0.05"), (1.0, "0.01"), (10.0, "0.1"), (0.5, "0.005"), (2500, "25")],
)
def test_upstox_tick_size_is_paise(tick: float, rupees: str) -> None:
    [instrument] = load_upstox_json(upstox_bytes(upstox_row(tick_size=tick)))
    assert instrument.tick_size == Decimal(rupees)
    assert str(instrument.tick_size) == rupees


@pytest.mark.parametrize(
    ("instrument_type", "segment", "kind"),
    [
        ("EQ", "NSE_EQ", InstrumentKind.EQ),
        ("BE", "NSE_EQ", InstrumentKind.EQ),
        ("FUT", "NSE_FO", InstrumentKind.FUT),
        ("FUTIDX", "NSE_FO", InstrumentKind.FUT),
        ("FUTSTK", "NSE_FO", InstrumentKind.FUT),
        ("FUTCOM", "MCX_FO", InstrumentKind.FUT),
        ("CE", "NSE_FO", InstrumentKind.OPT),
        ("PE", "BSE_FO", InstrumentKind.OPT),
    ],
)
def test_upstox_kinds(instrument_type: str, segment: str, kind: InstrumentKind) -> None:
    row = upstox_row(instrument_type=instrument_type, segment=segment)
    [instrument] = load_upstox_json(upstox_bytes(row))
    assert instrument.kind is kind


def test_upstox_skips_index_rows() -> None:
    index = {
        "segment": "NSE_INDEX",
        "instrument_key": "NSE_INDEX|Nifty 50",
        "instrument_type": "INDEX",
        "trading_symbol": "NIFTY",
    }
    assert load_upstox_json(upstox_bytes(index)) == []


def test_upstox_accepts_gzip() -> None:
    data = gzip.compress(upstox_bytes(upstox_row()))
    assert [i.key for i in load_upstox_json(data)] == ["NSE_EQ|INE002A01018"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"instrument_key": "x"}', "JSON array"),
        (upstox_bytes(upstox_row(tick_size=0)), "must be positive"),
        (upstox_bytes(upstox_row(tick_size="five")), "not a number"),
        (upstox_bytes(upstox_row(tick_size=True)), "not a number"),
        (upstox_bytes(upstox_row(lot_size=0)), "lot size"),
        (upstox_bytes(upstox_row(instrument_key=None)), "instrument_key missing"),
        (b"\x1f\x8b broken", "corrupt gzip"),
    ],
)
def test_upstox_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_upstox_json(data)


def kotak_bytes(*lines: str, header: str = KOTAK_HEADER) -> bytes:
    return (header + "\n".join(lines) + "\n").encode()


def test_kotak_rows_keyed_by_segment_and_trading_symbol() -> None:
    data = kotak_bytes(
        "2885,nse_cm,,RELIANCE-EQ,,INE002A01018,1,10.000000",
        "53113,nse_fo,OPTIDX,NIFTY26JUN25500CE,CE,,65,5.000000",
        "52977,nse_fo,FUTIDX,NIFTY26JUNFUT,XX,,65,10.000000",
    )
    master = InstrumentMaster(load_kotak_csv(data))
    reliance = master.get("nse_cm|RELIANCE-EQ")
    assert reliance is not None
    assert (reliance.kind, reliance.tick_size, reliance.token) == (
        InstrumentKind.EQ,
        Decimal("0.1"),
        "2885",
    )
    option = master.by_kotak_token("nse_fo", "53113")
    assert option is not None
    assert (option.key, option.kind, option.tick_size, option.lot_size) == (
        "nse_fo|NIFTY26JUN25500CE",
        InstrumentKind.OPT,
        Decimal("0.05"),
        65,
    )
    future = master.get("nse_fo|NIFTY26JUNFUT")
    assert future is not None
    assert future.kind is InstrumentKind.FUT


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("1,nse_fo,OPTSTK,RELIANCE26JUN1500PE,PE,,500,5", InstrumentKind.OPT),
        ("1,nse_fo,OPTIDX,ODDNAME,-,,65,5", InstrumentKind.OPT),
        ("1,bse_fo,,SENSEX26JUN80000CE,CE,,20,5", InstrumentKind.OPT),
        ("1,nse_fo,FUTSTK,RELIANCE26JUNFUT,XX,,500,10", InstrumentKind.FUT),
        ("1,mcx_fo,,CRUDEOIL26JUNFUT,XX,,100,100", InstrumentKind.FUT),
        # A symbol that merely ends in CE is not an option when the master says otherwise.
        ("1,nse_cm,,TRACE-EQ,,INE000000001,1,5", InstrumentKind.EQ),
        ("1,bse_cm,,SPACE,,INE000000002,1,1", InstrumentKind.EQ),
    ],
)
def test_kotak_kind_comes_from_the_master(line: str, kind: InstrumentKind) -> None:
    [instrument] = load_kotak_csv(kotak_bytes(line))
    assert instrument.kind is kind


def test_kotak_skips_index_rows() -> None:
    data = kotak_bytes("26000,nse_cm,,Nifty 50,,,1,-1", "2885,nse_cm,,RELIANCE-EQ,,INE1,1,5")
    assert [i.key for i in load_kotak_csv(data)] == ["nse_cm|RELIANCE-EQ"]


def test_kotak_tolerates_stray_spaces_and_semicolons_in_header() -> None:
    header = " pSymbol, pExchSeg ,pTrdSymbol;,pInstType,dTickSize ,lLotSize;,dStrikePrice;\n"
    data = kotak_bytes("2885,nse_cm,RELIANCE-EQ,,5.0,1,-1", header=header)
    [instrument] = load_kotak_csv(data)
    assert (instrument.key, instrument.tick_size) == ("nse_cm|RELIANCE-EQ", Decimal("0.05"))


def test_kotak_accepts_gzip_and_bom() -> None:
    data = gzip.compress(b"\xef\xbb\xbf" + kotak_bytes("2885,nse_cm,,RELIANCE-EQ,,INE1,1,5"))
    assert [i.key for i in load_kotak_csv(data)] == ["nse_cm|RELIANCE-EQ"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"pSymbol,pTrdSymbol\n1,X\n", "missing column"),
        (kotak_bytes("2885,nse_cm,,RELIANCE-EQ,,INE1,1,0"), "line 2.*must be positive"),
        (kotak_bytes("2885,nse_cm,,RELIANCE-EQ,,INE1,1,abc"), "not a number"),
        (kotak_bytes("2885,nse_cm,,RELIANCE-EQ,,INE1,1.5,5"), "lot size"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_kotak_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_kotak_csv(data)


def test_load_master_picks_loader_by_file_name(tmp_path: Path) -> None:
    upstox = tmp_path / "complete.json.gz"
    upstox.write_bytes(gzip.compress(upstox_bytes(upstox_row())))
    kotak = tmp_path / "nse_cm-v1.csv"
    kotak.write_bytes(kotak_bytes("2885,nse_cm,,RELIANCE-EQ,,INE1,1,5"))
    master = load_master([upstox, kotak])
    assert sorted(i.key for i in master) == ["NSE_EQ|INE002A01018", "nse_cm|RELIANCE-EQ"]
    assert len(master) == 2


@pytest.mark.parametrize(
    ("name", "content"),
    [("broken.json", b"[{"), ("broken.csv", b"nothing,useful\n1,2\n"), ("list.txt", b"")],
)
def test_load_master_names_the_bad_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=name):
        load_master([path])


def test_sample_master_has_both_brokers_and_every_kind() -> None:
    master = sample_master()
    assert master is sample_master()
    reliance = master.get("NSE_EQ|INE002A01018")
    assert reliance is not None
    assert (reliance.kind, reliance.symbol) == (InstrumentKind.EQ, "RELIANCE")
    assert master.get("nse_cm|RELIANCE-EQ") is not None
    assert master.get("NSE_INDEX|Nifty 50") is None
    kinds = {(i.exchange, i.kind) for i in master}
    for segment in ("NSE_FO", "nse_fo"):
        assert {(segment, InstrumentKind.FUT), (segment, InstrumentKind.OPT)} <= kinds
    option_types = {
        i.symbol.split()[2] for i in master if i.exchange == "NSE_FO" and " " in i.symbol
    }
    assert {"CE", "PE"} <= option_types


def test_sample_has_a_low_priced_stock_and_every_option_band() -> None:
    prices = {k: Decimal(v) for k, v in orjson.loads(sample_data("paper_prices.json")).items()}
    instruments = {i.key: i for i in sample_master()}
    assert set(prices) == set(instruments)
    for key, price in prices.items():
        assert price % instruments[key].tick_size == 0, key
    equities = [p for k, p in prices.items() if instruments[k].kind is InstrumentKind.EQ]
    assert min(equities) < 100
    options = [p for k, p in prices.items() if instruments[k].kind is InstrumentKind.OPT]
    bands = [(0, 1), (1, 5), (5, 10), (10, 100), (100, 500), (500, 10**6)]
    for low, high in bands:
        assert any(low < p <= high for p in options), (low, high)


def test_master_is_read_only() -> None:
    master = sample_master()
    with pytest.raises(AttributeError):
        master.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1800.0, 1800), (1800, 1800), ("900", 900), (0, None), (0.0, None), (None, None)],
)
def test_upstox_freeze_quantity_is_read(value: object, expected: int | None) -> None:
    [instrument] = load_upstox_json(upstox_bytes(upstox_row(freeze_quantity=value)))
    assert instrument.freeze_quantity == expected


def test_upstox_freeze_quantity_absent_is_unknown() -> None:
    [instrument] = load_upstox_json(upstox_bytes(upstox_row()))
    assert instrument.freeze_quantity is None


@pytest.mark.parametrize("value", [-5, 1.5, "many", True])
def test_upstox_bad_freeze_quantity_names_it(value: object) -> None:
    with pytest.raises(ValueError, match="freeze quantity"):
        load_upstox_json(upstox_bytes(upstox_row(freeze_quantity=value)))


def test_kotak_freeze_quantity_where_the_file_has_it() -> None:
    header = KOTAK_HEADER.rstrip("\n") + ",lFreezeQty\n"
    [instrument] = load_kotak_csv(
        kotak_bytes("52977,nse_fo,FUTIDX,NIFTY26JUNFUT,XX,,65,10.000000,1800", header=header)
    )
    assert instrument.freeze_quantity == 1800


def test_the_shipped_sample_carries_freeze_quantities() -> None:
    instrument = sample_master().get("NSE_EQ|INE002A01018")
    assert instrument is not None
    assert instrument.freeze_quantity == 100000
