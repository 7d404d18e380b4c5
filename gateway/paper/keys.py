"""Typed keys for the paper broker's app and request state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.instruments import InstrumentMaster
from gateway.paper.broker_state import Brokerage
from gateway.paper.state import Ledger, OrderIds, PriceBook


@dataclass(slots=True)
class PaperState:
    instruments: InstrumentMaster
    prices: PriceBook
    rng: random.Random
    ledger: Ledger = field(default_factory=Ledger)
    ids: OrderIds = field(default_factory=OrderIds)
    brokerage: Brokerage = field(default_factory=Brokerage)


@dataclass(frozen=True, slots=True)
class Received:
    """A request as recorded, and its body decoded once: ``parsed`` is False for broken JSON."""

    entry: dict[str, Any]
    body: Any
    parsed: bool
    started: float


PAPER = web.AppKey("paper_state", PaperState)
RECEIVED = web.RequestKey("paper_received", Received)
