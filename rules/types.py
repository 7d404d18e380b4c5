"""Shared value types of the compliance rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    SL_M = "SL-M"


class Action(enum.Enum):
    """What an order-route request does; place, modify and cancel all count against the limit."""

    PLACE = "place"
    MODIFY = "modify"
    CANCEL = "cancel"


class InstrumentKind(enum.Enum):
    """The protection grid's instrument classes (SPEC §6): options have their own bands."""

    EQ = "EQ"
    FUT = "FUT"
    OPT = "OPT"


@dataclass(frozen=True, slots=True)
class Instrument:
    key: str  # upstox instrument_key, or kotak "<es>|<ts>"
    kind: InstrumentKind
    tick_size: Decimal  # in rupees
    symbol: str = ""
    exchange: str = ""
    lot_size: int = 1
    token: str = ""  # exchange token (kotak quotes are keyed "<seg>|<token>")
    freeze_quantity: int | None = None  # the most one order may carry; a sliced order splits


class CredentialKind(enum.Enum):
    """How a request authenticated (SPEC §5, §9)."""

    LOGIN = "login"  # a session from POST /gateway/v1/session or the upstox token route
    ANALYTICS = "analytics"  # upstox-style read-only analytics token, one per account
    API_TOKEN = "api_token"  # paradex-style API token with an optional CIDR allowlist
