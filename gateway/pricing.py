"""SPEC §6 on the order path: each order resolved against the orders this gateway placed, and
MARKET/SL-M priced by the protection grid from a fresh LTP (pushed, or asked of the upstream's
quote route once, on the account's behalf and from its egress address).

Shared with explain, so it only reads: a quote it must fetch counts against nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rules.orders import (
    MarketPolicy,
    convert,
    needs_conversion,
    needs_ltp,
    resolve_for_account,
)
from rules.types import Action

from .collaborators import Collaborators
from .dialects.base import Decoded, Dialect
from .edge import identify_hash
from .stores.base import Snapshot


class Pricing(Collaborators):
    def _converted(self, dialect: Dialect, count: int) -> None:
        if count:
            self.metrics.child(self.metrics.conversions, dialect.name).inc(count)

    async def rewrite(
        self, dialect: Dialect, decoded: Decoded, snapshot: Snapshot, credential_sha256: str
    ) -> int:
        """Resolve each order against the order book and price MARKET/SL-M by the grid
        (SPEC §6), in place; the number converted.  Shared with explain, so it only reads:
        a quote it must fetch goes to the upstream's quote route and counts against nothing."""
        rules = self.rules
        converted = 0
        user_id = snapshot.account.user_id
        for doc in decoded.docs:
            intent = doc.intent
            if intent.order_id is not None and intent.action is not Action.PLACE:
                known = await self.orders.known_order(intent.order_id)
                intent = resolve_for_account(intent, known, user_id=user_id)
                doc.intent = intent
            if not needs_conversion(intent):
                continue
            instrument = self.instruments.get(intent.instrument_key or "")
            if not dialect.applies_grid(rules, known_instrument=instrument is not None):
                continue
            ltp: Decimal | None = None
            age: float | None = None
            if (
                instrument is not None
                and needs_ltp(intent)
                and rules.market_orders is MarketPolicy.CONVERT
            ):
                seen = self.ltp.cached(instrument.key) or await self.ltp.fresh(
                    instrument, lambda i: self._fetch_ltp(dialect, i, credential_sha256)
                )
                if seen is not None:
                    ltp, age = seen
            conversion = convert(
                intent,
                instrument=instrument,
                ltp=ltp,
                ltp_age=age,
                max_age=rules.ltp_max_age_s,
                grid=rules.grid,
                policy=rules.market_orders,
            )
            if conversion is not None:
                dialect.apply(doc, conversion)
                converted += 1
        return converted

    async def _fetch_ltp(
        self, dialect: Dialect, instrument: Any, credential_sha256: str
    ) -> Decimal | None:
        # Proved current first (admit has not run yet): a quote fetched on the order's behalf
        # carries the account's identity or upstream credential as it is now.
        snapshot = await identify_hash(self.credentials, credential_sha256, dialect)
        path = dialect.ltp_path(instrument)  # signed with its query: the instrument asked for
        headers = self._identity(
            snapshot, dialect, "GET", path, {"Accept": "application/json"}, body=None
        )
        resp = await self.upstream.send(
            dialect.name, "GET", path, headers, None, **self._via(snapshot, dialect)
        )
        return dialect.parse_ltp(instrument, resp.body) if resp.status == 200 else None
