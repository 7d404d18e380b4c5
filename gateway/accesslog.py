"""The request log (SPEC §13 ``[log]``): one line per request on ``order_gateway.access``.

A line says when, which request (``X-Request-Id`` when the client sent a short safe token,
else one made here), the dialect and route class, the account, the client IP, the decision
and its reason, the status, the gateway's own time and the upstream's.  Never a token, a
secret or a body: the line is built from the fields of :class:`AccessRecord` alone, which the
pipeline and the error boundary fill in as the request walks (``request[ACCESS]``).

The middleware sits outside the error boundary, so it logs the status the client really got,
refusals and last-resort 500s included, and the boundary's 500 names the same request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from rules.decisions import Reason, Refused
from rules.types import IPNetwork

from .edge import client_ip

access_log = logging.getLogger("order_gateway.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A client's request id is echoed only when it cannot smuggle anything into a header or a log.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PLAIN = re.compile(r"[^\s\"=]+")


@dataclass(slots=True)
class AccessRecord:
    """What one request's log line says; the pipeline and the boundary fill it in."""

    request_id: str
    dialect: str | None = None
    route_class: str | None = None  # place, modify, cancel, read, public, gateway, admin
    account: str | None = None
    decision: str | None = None  # admitted, refused, replayed, forwarded; else from the status
    reason: str | None = None  # a Reason's value
    upstream_ms: float | None = None


ACCESS = web.RequestKey("access", AccessRecord)

# A line's fields, in this order (text: key=value pairs; json: one object)
_FIELDS = (
    "time",
    "request_id",
    "dialect",
    "route_class",
    "account",
    "client_ip",
    "method",
    "path",
    "decision",
    "reason",
    "status",
    "gateway_ms",
    "upstream_ms",
)


def request_id(request: web.Request) -> str:
    """This request's id: the access record's, else the client's safe one, else a new one."""
    record = request.get(ACCESS)
    if record is not None:
        return str(record.request_id)
    given = request.headers.get("X-Request-Id", "")
    return given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def note_refusal(request: web.Request, reason: Reason) -> None:
    """The error boundary names the reason of every refusal it renders."""
    record = request.get(ACCESS)
    if record is not None:
        record.reason = reason.value


def note_route(request: web.Request, dialect: str, route_class: str) -> None:
    record = request.get(ACCESS)
    if record is not None:
        record.dialect, record.route_class = dialect, route_class


def _route_class(request: web.Request, record: AccessRecord) -> str:
    if record.route_class is not None:
        return record.route_class
    return "admin" if request.path.startswith("/admin/") else "gateway"


def _client(request: web.Request, trusted: tuple[IPNetwork, ...]) -> str:
    try:
        return str(client_ip(request, trusted))
    except Refused:  # a trusted proxy sent no usable forwarded header: the peer is all we know
        return request.remote or "-"


def _decision(record: AccessRecord, status: int) -> str:
    if record.reason == Reason.INTERNAL_ERROR.value:
        return "error"  # a bug, never a decision
    return record.decision or ("refused" if status >= 400 else "ok")


def _value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    # quoted when it could be read as more than one field, or as a line of its own
    return text if _PLAIN.fullmatch(text) else orjson.dumps(text).decode()


def _line(fields: dict[str, object], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(fields).decode()
    return " ".join(f"{k}={_value(v)}" for k, v in fields.items())


def access_middleware(*, trusted_proxies: tuple[IPNetwork, ...], fmt: str) -> Middleware:
    @web.middleware
    async def log_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        given = request.headers.get("X-Request-Id", "")
        record = AccessRecord(given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex)
        request[ACCESS] = record
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # what the boundary lets through (a redirect, say)
            status = exc.status
            raise
        finally:
            fields = asdict(record)
            fields.update(
                time=datetime.now(UTC).isoformat(timespec="milliseconds"),
                route_class=_route_class(request, record),
                client_ip=_client(request, trusted_proxies),
                method=request.method,
                # as sent and without the query: a client may put anything there, and a
                # decoded path could carry a line break into the log
                path=request.raw_path.split("?", 1)[0],
                status=status,
                decision=_decision(record, status),
                gateway_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            access_log.info("%s", _line({k: fields[k] for k in _FIELDS}, fmt))

    return log_request


def configure(fmt: str) -> None:
    """For ``serve``: in "json" mode the access lines go out bare, one object per line, so a
    log shipper reads them without stripping the text log's prefix."""
    if fmt != "json":
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.propagate = False
