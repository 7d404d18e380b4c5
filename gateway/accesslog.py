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

import asyncio
import atexit
import contextlib
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from rules.decisions import Reason, Refused
from rules.types import IPNetwork

from .edge import client_ip
from .ids import new_id

access_log = logging.getLogger("order_gateway.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A client's request id is echoed only when it cannot smuggle anything into a header or a log.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PLAIN = re.compile(r"[^\s\"=]+")


# serve's handler, written to directly (see ``configure``); None: lines go through logging
_direct: _BufferedHandler | None = None


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


def request_id(request: web.Request) -> str:
    """This request's id: the access record's, else the client's safe one, else a new one."""
    record = request.get(ACCESS)
    if record is not None:
        return str(record.request_id)
    given = request.headers.get("X-Request-Id", "")
    return given if _SAFE_REQUEST_ID.fullmatch(given) else new_id()


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


# Fields whose values may come from a client or an operator, and so may need quoting; the
# others are the gateway's own words and numbers (request ids are safe tokens by construction).
_FREE_TEXT = frozenset({"account", "path", "client_ip"})


def _line(fields: dict[str, object], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(fields).decode()
    return " ".join(
        f"{k}={_value(v) if k in _FREE_TEXT else ('-' if v is None else v)}"
        for k, v in fields.items()
    )


def access_middleware(*, trusted_proxies: tuple[IPNetwork, ...], fmt: str) -> Middleware:
    @web.middleware
    async def log_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        given = request.headers.get("X-Request-Id", "")
        record = AccessRecord(given if _SAFE_REQUEST_ID.fullmatch(given) else new_id())
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
            # a line's fields, in this order (text: key=value pairs; json: one object)
            fields: dict[str, object] = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "request_id": record.request_id,
                "dialect": record.dialect,
                "route_class": _route_class(request, record),
                "account": record.account,
                "client_ip": _client(request, trusted_proxies),
                "method": request.method,
                # as sent and without the query: a client may put anything there, and a
                # decoded path could carry a line break into the log
                "path": request.raw_path.split("?", 1)[0],
                "decision": _decision(record, status),
                "reason": record.reason,
                "status": status,
                "gateway_ms": round((time.perf_counter() - started) * 1000, 3),
                "upstream_ms": record.upstream_ms,
            }
            line = _line(fields, fmt)
            direct = _direct
            if direct is not None:  # serve's own handler: no LogRecord per request
                direct.write_line(fields["time"], line)
            else:
                access_log.info("%s", line)

    return log_request


class _BufferedHandler(logging.Handler):
    """Access lines kept in memory and written a moment later, many per system call.

    A log line per request written on its own costs a system call per order (the request log
    alone took ~65 us of CPU per order in a quick benchmark), and stderr's own buffer cannot be
    relied on: with ``PYTHONUNBUFFERED`` set, as container images often do, it has none.  Lines
    wait here until ``FLUSH_S`` has passed or ``HIGH_WATER`` bytes are waiting, and go out in
    writes of whole lines of at most ``CHUNK`` bytes (a write that size to a pipe is never
    interleaved with another worker's).  Any other log line first flushes these (``configure``
    hangs a filter on the root handlers), so the log stays in order.
    """

    FLUSH_S = 0.2
    CHUNK = 4096  # PIPE_BUF on Linux
    HIGH_WATER = 64 * 1024

    def __init__(self, out: BinaryIO, *, bare: bool) -> None:
        super().__init__()
        self._out = out
        self._bare = bare
        self._pending: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._add(self.format(record))
        except Exception:  # a log line must never break a request
            self.handleError(record)

    def write_line(self, at: object, line: str) -> None:
        """What ``emit`` writes for the line, without building a LogRecord: the time the
        line already carries stands where the formatter's asctime would."""
        self._add(line if self._bare else f"{at} INFO {access_log.name}: {line}")

    def _add(self, line: str) -> None:
        data = line.encode("utf-8", "backslashreplace") + b"\n"
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.HIGH_WATER:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (at exit, say): write it now
                self.flush()
                return
            self._timer = loop.call_later(self.FLUSH_S, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        # The timer is left to run (this may be another thread's log line): it finds little
        # or nothing to write, and lines added meanwhile wait for it, at most FLUSH_S.
        pending, self._pending, self._size = self._pending, [], 0
        chunk: list[bytes] = []
        size = 0
        with contextlib.suppress(OSError, ValueError):  # stderr closed or gone: nothing to do
            for data in pending:
                if chunk and size + len(data) > self.CHUNK:
                    self._write(b"".join(chunk))
                    chunk, size = [], 0
                chunk.append(data)
                size += len(data)
            if chunk:
                self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    def flush_first(self, record: logging.LogRecord) -> bool:
        """A filter for the other log handlers: the access lines waiting go out first."""
        if self._pending:
            self.flush()
        return True


def configure(fmt: str) -> None:
    """For ``serve``: the access lines are buffered briefly (see :class:`_BufferedHandler`);
    in "json" mode they go out bare, one object per line, so a log shipper reads them without
    stripping the text log's prefix."""
    global _direct
    handler = _BufferedHandler(sys.stderr.buffer, bare=fmt == "json")
    pattern = "%(message)s" if fmt == "json" else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(pattern))
    access_log.addHandler(handler)
    access_log.propagate = False
    for other in logging.getLogger().handlers:
        other.addFilter(handler.flush_first)
    atexit.register(handler.flush)
    _direct = handler
