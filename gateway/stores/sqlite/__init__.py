"""SQLite store: the embedded default for one gateway process (SPEC §11).

One connection on one thread (``core``); each role of ``stores.roles`` is a module over it.
Audit records and known orders are buffered and written in batches (the caches answer for
known orders meanwhile); everything that decides admission is written before the call that
changed it returns.
"""

from __future__ import annotations

from .accounts import SQLiteAccounts
from .admission import SQLiteAdmission
from .audit import SQLiteAudit
from .broker import SQLiteBroker
from .credentials import SQLiteCredentials
from .idempotency import SQLiteIdempotency
from .orders import SQLiteOrders
from .registry import SQLiteRegistry
from .tokens import SQLiteTokens

__all__ = ["SQLiteStore"]


class SQLiteStore(
    SQLiteAccounts,
    SQLiteBroker,
    SQLiteCredentials,
    SQLiteTokens,
    SQLiteRegistry,
    SQLiteAdmission,
    SQLiteOrders,
    SQLiteIdempotency,
    SQLiteAudit,
):
    """Every role over one connection."""

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(url.removeprefix("sqlite:///") or ":memory:")
