"""Instrument masters: what kind an instrument is (EQ, FUT, OPT) and its tick size (SPEC §6, §10).

Two broker files are read, both checked against the brokers' own documentation and SDKs:

- The Upstox instruments JSON (upstox.com/developer/api-documentation/instruments; the
  ``InstrumentData`` model of upstox-python-sdk 2.30): a list of objects with ``instrument_key``,
  ``segment``, ``exchange_token``, ``trading_symbol``, ``instrument_type`` (EQ, FUT…, CE, PE,
  INDEX…), ``lot_size``, ``freeze_quantity`` (the most one order may carry: a v3 place with
  ``"slice": true`` is split by it, SPEC §7; 0 or absent where none applies) and
  ``tick_size``. In the JSON ``tick_size`` is in paise: the Option
  Contracts example answers ``"tick_size": 5`` for a ₹0.05 NIFTY option, while the legacy CSV
  says ``0.05``. The file is also served gzipped.
- The Kotak Neo scrip master CSV (``…/transformed/nse_fo.csv``, ``nse_cm-v1.csv``, from
  ``script-details/1.0/masterscrip/file-paths``): ``pSymbol`` (exchange token), ``pTrdSymbol``
  (the ``ts`` of an order), ``pExchSeg`` (the ``es``), ``pInstType`` (FUTIDX, FUTSTK, OPTIDX,
  OPTSTK…), ``pOptionType`` (CE, PE, XX for futures), ``lLotSize``, ``dTickSize`` and, where
  the file has it, ``lFreezeQty``. Header
  names carry stray spaces and semicolons in the real files (``dTickSize ``, ``dStrikePrice;``).
  ``dTickSize`` is in paise like the strike: integrations that read the file divide it by 100
  (default 5 → ₹0.05). Cash-segment index rows have no ISIN and are skipped.

Prices are parsed with ``Decimal(str(value))``, never float arithmetic.
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.resources
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from rules.types import Instrument, InstrumentKind

__all__ = [
    "InstrumentMaster",
    "load_kotak_csv",
    "load_master",
    "load_upstox_json",
    "sample_master",
]

_PAISE = Decimal(100)
_ONE = Decimal(1)
_GZIP_MAGIC = b"\x1f\x8b"

UPSTOX_SAMPLE = "upstox_instruments_sample.json"
KOTAK_SAMPLE = "kotak_scrip_sample.csv"


class InstrumentMaster:
    """Instruments by upstox ``instrument_key`` or kotak ``<es>|<ts>``; read-only once built."""

    __slots__ = ("_by_key", "_by_token")

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        by_key: dict[str, Instrument] = {}
        by_token: dict[tuple[str, str], Instrument] = {}
        for instrument in instruments:
            by_key[instrument.key] = instrument
            if instrument.token:
                by_token[(instrument.exchange, instrument.token)] = instrument
        self._by_key = by_key
        self._by_token = by_token

    def get(self, key: str) -> Instrument | None:
        return self._by_key.get(key)

    def freeze_quantity(self, key: str) -> int | None:
        """The most one order of the instrument may carry; None when unknown (SPEC §7)."""
        instrument = self._by_key.get(key)
        return None if instrument is None else instrument.freeze_quantity

    def replace_with(self, other: InstrumentMaster) -> None:
        """Take ``other``'s instruments in one step (a daily refresh, SPEC §14): both tables
        are assigned with no await between them, so no request sees half of each."""
        self._by_key, self._by_token = other._by_key, other._by_token

    def by_kotak_token(self, seg: str, token: str) -> Instrument | None:
        """The instrument a Kotak quote names as ``<seg>|<token>`` (``pExchSeg``, ``pSymbol``)."""
        return self._by_token.get((seg, token))

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_key.values())

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __repr__(self) -> str:
        return f"InstrumentMaster({len(self)} instruments)"


def _maybe_gunzip(data: bytes) -> bytes:
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"corrupt gzip data: {exc}") from exc
    return data


def _paise_to_rupees(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what}: tick size {value!r} is not a number")
    try:
        paise = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{what}: tick size {value!r} is not a number") from exc
    if not paise.is_finite() or paise <= 0:
        raise ValueError(f"{what}: tick size {value!r} must be positive")
    rupees = (paise / _PAISE).normalize()
    exponent = rupees.as_tuple().exponent
    return rupees.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else rupees


def _count(value: object, what: str, name: str) -> int | None:
    """A positive whole number written as 25, 25.0 or "25"; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what}: {name} {value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{what}: {name} {value!r} is not a number") from exc
    if not number.is_finite() or number != number.to_integral_value() or number < 1:
        raise ValueError(f"{what}: {name} {value!r} is not a positive integer")
    return int(number)


def _lot_size(value: object, what: str) -> int:
    return _count(value, what, "lot size") or 1


def _freeze_quantity(value: object, what: str) -> int | None:
    # Upstox writes 0 (or leaves it out) where no freeze applies; both mean "not known".
    if value in (0, 0.0, "0", "0.0"):
        return None
    return _count(value, what, "freeze quantity")


def _upstox_kind(instrument_type: str, segment: str) -> InstrumentKind | None:
    kind = instrument_type.upper()
    if kind in ("CE", "PE") or kind.startswith("OPT"):
        return InstrumentKind.OPT
    if kind.startswith("FUT"):
        return InstrumentKind.FUT
    if kind == "EQ":
        return InstrumentKind.EQ
    # Other series of an equity segment (NSE BE/SM, BSE groups A/B/T…) still trade as shares.
    if segment.upper().endswith("_EQ") and kind not in ("INDEX", "IDX"):
        return InstrumentKind.EQ
    return None


def load_upstox_json(data: bytes) -> list[Instrument]:
    """Instruments from the Upstox instruments JSON (plain or gzip); non-tradable rows skipped."""
    try:
        rows = orjson.loads(_maybe_gunzip(data))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise ValueError("expected a JSON array of instruments")
    instruments: list[Instrument] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"row {index}: expected an object")
        instrument = _upstox_row(row, index)
        if instrument is not None:
            instruments.append(instrument)
    return instruments


def _upstox_row(row: dict[str, Any], index: int) -> Instrument | None:
    key = row.get("instrument_key")
    instrument_type = row.get("instrument_type")
    segment = row.get("segment") or ""
    if not isinstance(key, str) or not key:
        raise ValueError(f"row {index}: instrument_key missing")
    if not isinstance(instrument_type, str) or not isinstance(segment, str):
        raise ValueError(f"row {index} ({key}): instrument_type or segment is not a string")
    kind = _upstox_kind(instrument_type, segment)
    if kind is None:
        return None
    what = f"row {index} ({key})"
    symbol = row.get("trading_symbol")
    token = row.get("exchange_token")
    return Instrument(
        key=key,
        kind=kind,
        tick_size=_paise_to_rupees(row.get("tick_size"), what),
        symbol=symbol if isinstance(symbol, str) else "",
        exchange=segment,
        lot_size=_lot_size(row.get("lot_size"), what),
        token="" if token is None else str(token),
        freeze_quantity=_freeze_quantity(row.get("freeze_quantity"), what),
    )


_KOTAK_REQUIRED = ("pSymbol", "pTrdSymbol", "pExchSeg", "dTickSize")


def _kotak_kind(row: dict[str, str], has_isin: bool) -> InstrumentKind | None:
    segment = row.get("pExchSeg", "").lower()
    inst_type = row.get("pInstType", "").upper()
    option_type = row.get("pOptionType", "").upper()
    if option_type in ("CE", "PE") or inst_type.startswith("OPT"):
        return InstrumentKind.OPT
    if inst_type.startswith("FUT") or (segment.endswith("_fo") and option_type == "XX"):
        return InstrumentKind.FUT
    if segment.endswith("_cm"):
        if inst_type in ("INDEX", "IDX") or (has_isin and not row.get("pISIN")):
            return None
        return InstrumentKind.EQ
    return None


def load_kotak_csv(data: bytes) -> list[Instrument]:
    """Instruments from a Kotak Neo scrip master CSV (plain or gzip); index rows skipped."""
    try:
        text = _maybe_gunzip(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("empty file, expected a CSV header") from None
    names = [name.strip().strip(";").strip() for name in header]
    missing = [column for column in _KOTAK_REQUIRED if column not in names]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    has_isin = "pISIN" in names
    instruments: list[Instrument] = []
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            row = {name: value.strip() for name, value in zip(names, values, strict=False)}
            kind = _kotak_kind(row, has_isin)
            if kind is None:
                continue
            segment, symbol = row["pExchSeg"], row["pTrdSymbol"]
            what = f"line {reader.line_num} ({segment}|{symbol})"
            if not segment or not symbol:
                raise ValueError(f"line {reader.line_num}: pExchSeg or pTrdSymbol empty")
            instruments.append(
                Instrument(
                    key=f"{segment}|{symbol}",
                    kind=kind,
                    tick_size=_paise_to_rupees(row["dTickSize"], what),
                    symbol=symbol,
                    exchange=segment,
                    lot_size=_lot_size(row.get("lLotSize"), what),
                    token=row["pSymbol"],
                    freeze_quantity=_freeze_quantity(row.get("lFreezeQty"), what),
                )
            )
    except csv.Error as exc:
        raise ValueError(f"line {reader.line_num}: {exc}") from exc
    return instruments


def _loader_for(path: Path) -> Callable[[bytes], list[Instrument]]:
    """The loader a file (or a URL's last path segment) names by its extension."""
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        return load_upstox_json
    if name.endswith((".csv", ".csv.gz")):
        return load_kotak_csv
    raise ValueError(f"{path}: unknown instrument file type (expected .json, .json.gz or .csv)")


def load_master(paths: Sequence[Path]) -> InstrumentMaster:
    """One master from Upstox JSON (``.json``, ``.json.gz``) and Kotak CSV (``.csv``) files."""
    instruments: list[Instrument] = []
    for path in paths:
        loader = _loader_for(Path(path))
        data = Path(path).read_bytes()
        try:
            loaded = loader(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        instruments.extend(loaded)
    return InstrumentMaster(instruments)


def sample_data(name: str) -> bytes:
    """A file shipped in ``gateway/data``."""
    return importlib.resources.files("gateway").joinpath("data", name).read_bytes()


@functools.cache
def sample_master() -> InstrumentMaster:
    """The Upstox + Kotak sample in ``gateway/data`` (SPEC §13: ``instruments.files = []``)."""
    return InstrumentMaster(
        [*load_upstox_json(sample_data(UPSTOX_SAMPLE)), *load_kotak_csv(sample_data(KOTAK_SAMPLE))]
    )
