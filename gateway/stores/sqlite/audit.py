"""The audit log (the AuditLog role), SPEC §12: buffered, written in batches with known orders.

A record is appended on the request path and written by the flusher; a batch whose write
fails is kept, in order, for the next flush: an audit record is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..base import AuditEntry, StoreUnavailable
from ..flusher import BATCH
from .core import SQLiteCore


class SQLiteAudit(SQLiteCore):
    def audit(self, entry: AuditEntry) -> None:
        self._pending_audit.append((entry.at, entry.user_id, entry.record))
        if len(self._pending_audit) >= BATCH:
            self._flusher.wake()  # the flusher writes it; this request does not wait for a commit

    async def audit_query(self, *, user_id: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        await self._flush()

        if user_id is None:
            rows = await self._all("SELECT record FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT record FROM audit WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            )
        return [orjson.loads(row[0]) for row in rows]

    async def _flush(self) -> None:
        audit, self._pending_audit = self._pending_audit, []
        orders, self._pending_orders = self._pending_orders, []
        if (not audit and not orders) or self._db is None:
            return

        def write() -> None:
            with self._tx() as db:
                db.executemany("INSERT INTO audit (at, user_id, record) VALUES (?, ?, ?)", audit)
                db.executemany(
                    "INSERT OR IGNORE INTO orders (order_id, user_id, instrument_key, side)"
                    " VALUES (?, ?, ?, ?)",
                    [(o.order_id, o.user_id, o.instrument_key, o.side.value) for o in orders],
                )

        try:
            await self._run(write)
        except StoreUnavailable:
            # Keep the batch (in order) for the next flush: an audit record is never dropped.
            self._pending_audit[:0] = audit
            self._pending_orders[:0] = orders
            raise
