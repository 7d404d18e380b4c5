"""The error boundary: the one place where an exception becomes an answer.

Handlers, the pipeline and the stores only raise.  One middleware, outermost in the main app
(so the admin sub-app's handlers and its auth check go through it too), picks the envelope by
path, as clients of each dialect expect it: the dialect owning the path answers in its own
envelope (``/v2/user/ip`` and Upstox's token route are under Upstox's ``/v2/``); the
gateway's own API and the admin API answer ``{"error": CODE, "message": …}`` (SPEC §2).

It maps the gateway's own errors: :class:`Refused` (with ``Retry-After``), an unavailable
store (503), an upstream failure, a body over the limit and aiohttp's routing 404/405.
Anything else is a bug; it still gets the dialect's envelope, as a 500 with a request id that
is also in the log line carrying the traceback and in ``X-Request-Id`` (issue 15), never
aiohttp's plain-text page.  Once an order may have reached the upstream (the pipeline sets
:data:`SENT`) no answer from here claims that nothing was sent: it says the outcome is unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from rules.decisions import Reason, Refuse, Refused

from .accesslog import note_refusal, request_id
from .dialects.base import Dialect, refusal_response
from .metrics import Metrics
from .stores.base import StoreUnavailable
from .upstream import UpstreamError

log = logging.getLogger("order_gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# One message wherever a handler or the pipeline meets an unavailable store: until an order's
# first byte is written nothing has gone upstream (the pipeline's bookkeeping after that
# point never raises; see SENT).
STORE_UNAVAILABLE = "the gateway's store is unavailable; nothing was sent"

# Set on the request by the pipeline just before an order's first byte goes upstream.
SENT = web.RequestKey("sent", bool)


def gateway_envelope(refuse: Refuse) -> dict[str, Any]:
    """The gateway's own envelope (SPEC §2): ``{"error": CODE, "message": …}``."""
    return {"error": refuse.reason.name, "message": refuse.message}


def gateway_error(refuse: Refuse) -> web.Response:
    return refusal_response(gateway_envelope(refuse), refuse)


class Envelopes:
    """Which envelope a path answers in: the owning dialect's, else the gateway's own."""

    def __init__(self, dialects: Mapping[str, Dialect]) -> None:
        self._dialects = tuple(dialects.values())

    def owner(self, path: str) -> Dialect | None:
        for dialect in self._dialects:
            if dialect.owns(path):
                return dialect
        return None

    def render(
        self, path: str, refuse: Refuse, extra: Mapping[str, Any] | None = None
    ) -> web.Response:
        dialect = self.owner(path)
        if dialect is None:
            return refusal_response(gateway_envelope(refuse), refuse, extra)
        return dialect.refusal(refuse, extra)


def _http_refusal(exc: web.HTTPException, max_body_bytes: int) -> Refuse | None:
    """aiohttp's own 4xx for what the router or the body reader refused, as our reasons."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return Refuse(Reason.BODY_TOO_LARGE, f"request body over {max_body_bytes} bytes")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return Refuse(Reason.METHOD_NOT_ALLOWED, f"{exc.method} is not allowed here")
    if isinstance(exc, web.HTTPNotFound):
        return Refuse(Reason.NOT_FOUND, "no such route")
    return None


def error_boundary(envelopes: Envelopes, metrics: Metrics, *, max_body_bytes: int) -> Middleware:
    @web.middleware
    async def boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            note_refusal(request, refused.refusal.reason)
            return envelopes.render(request.path, refused.refusal)
        except web.HTTPException as exc:
            refuse = _http_refusal(exc, max_body_bytes)
            if refuse is None:
                raise
            note_refusal(request, refuse.reason)
            response = envelopes.render(request.path, refuse)
            if isinstance(exc, web.HTTPMethodNotAllowed):
                response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
            return response
        except Exception as exc:
            if not request.get(SENT):
                if isinstance(exc, StoreUnavailable):
                    note_refusal(request, Reason.STORE_UNAVAILABLE)
                    refuse = Refuse(Reason.STORE_UNAVAILABLE, STORE_UNAVAILABLE)
                    return envelopes.render(request.path, refuse)
                if isinstance(exc, UpstreamError):
                    note_refusal(request, exc.reason)
                    return envelopes.render(request.path, Refuse(exc.reason, str(exc)))
            return last_resort(envelopes, metrics, request, exc)

    return boundary


def last_resort(
    envelopes: Envelopes, metrics: Metrics, request: web.Request, exc: Exception
) -> web.Response:
    rid = request_id(request)
    note_refusal(request, Reason.INTERNAL_ERROR)
    dialect = envelopes.owner(request.path)
    metrics.child(metrics.internal_errors, dialect.name if dialect else "gateway").inc()
    log.error(
        "unexpected error answering %s %s (request id %s)",
        request.method,
        request.path,
        rid,
        exc_info=exc,
    )
    message = f"the gateway failed unexpectedly; request id {rid}"
    extra: dict[str, Any] = {"request_id": rid}
    if request.get(SENT):
        message += "; the order may have reached the broker, its outcome is unknown"
        extra["outcome"] = "unknown"
    response = envelopes.render(request.path, Refuse(Reason.INTERNAL_ERROR, message), extra)
    response.headers["X-Request-Id"] = rid
    return response
