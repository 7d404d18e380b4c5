"""The running gateway's parts, built once by ``create_app`` for the gateway's own handlers.

The order pipeline does not use this bag: it is given the parts it needs by name
(``Pipeline(...)``); the error boundary finds envelopes with ``errors.Envelopes``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web

from .clock import Clock
from .config import Config
from .dialects.base import Dialect
from .instruments import InstrumentMaster
from .ltp import LtpBook
from .metrics import Metrics
from .stores.base import Store
from .upstream import Upstream


@dataclass(slots=True)
class Services:
    config: Config
    clock: Clock
    store: Store
    upstream: Upstream
    instruments: InstrumentMaster
    ltp: LtpBook
    dialects: dict[str, Dialect]
    metrics: Metrics


SERVICES = web.AppKey("services", Services)


def token_hash(token: str) -> str:
    """Tokens are 256-bit random values, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()
