"""What the client gets back for an order the upstream saw (SPEC §6, §10).

The upstream's own answer, with the conversion headers when an order was priced by the
grid; or, when the upstream failed after the request was sent, a 502 in the dialect's
envelope whose ``outcome`` is unknown, naming the order's tag so the client can look it up.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rules.decisions import Reason, Refuse

from .audit import Trace
from .dialects.base import Decoded, Dialect
from .upstream import UpstreamResponse, response_headers


def outcome(decoded: Decoded, value: str, **more: Any) -> dict[str, Any]:
    """``{"outcome": …}`` plus the order's tag (or tags), the client's key to find it."""
    extra: dict[str, Any] = {"outcome": value, **more}
    tags = [d.intent.tag for d in decoded.docs if d.intent.tag]
    if tags:
        extra["tag"] = tags[0] if len(tags) == 1 else tags
    return extra


def order_answer(
    dialect: Dialect, decoded: Decoded, upstream: UpstreamResponse, trace: Trace
) -> web.Response:
    if upstream.status >= 500:
        trace.outcome = "unknown"
        return dialect.refusal(
            Refuse(
                Reason.UPSTREAM_FAILED,
                f"the upstream answered {upstream.status}; the order's outcome is unknown",
            ),
            outcome(decoded, "unknown", upstream_status=upstream.status),
        )
    trace.outcome = "ok" if upstream.status < 400 else "rejected_upstream"
    headers = response_headers(upstream.headers)
    converted = [d.conversion for d in decoded.docs if d.conversion is not None]
    if converted:
        headers["X-Gateway-Order-Type"] = ", ".join(c.order_type.value for c in converted)
        headers["X-Gateway-Limit-Price"] = ", ".join(str(c.limit_price) for c in converted)
        # An SL-M is priced from its trigger, not an LTP: "-" in its place, and no header
        # at all when no converted order used an LTP.
        if any(c.ltp is not None for c in converted):
            headers["X-Gateway-LTP"] = ", ".join(
                "-" if c.ltp is None else str(c.ltp) for c in converted
            )
    return web.Response(status=upstream.status, body=upstream.body, headers=headers)
