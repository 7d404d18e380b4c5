"""HTTP hardening at the front door (SPEC §12): what the request line and head may be.

- HTTP/1.0 and HTTP/1.1 only: any other version in the request line (``HTTP/2.0``, ``HTTP/1.2``)
  is refused with 505, never answered as if it were 1.1.
- A request head (request line and header lines) over ``server.max_header_bytes`` gets 431.
  aiohttp's parser refuses a single line beyond its own per-line cap first (400, as plain
  text, before any application code runs); that cap is set to twice the configured limit, so
  every head from the limit up to twice it gets the 431 in the dialect's envelope.
- ``Expect: 100-continue`` on an order route: the client waits for ``100 Continue`` before it
  sends the body, so the admission checks that need no body (SPEC §5 steps 1-4) run first; a
  refused order gets its refusal instead of ``100 Continue`` and its body is never read.
- aiohttp's pure-Python request parser (``AIOHTTP_NO_EXTENSIONS=1``, or a platform without
  the C extension) is refused at startup: the C parser (llhttp) is the one tested against
  request smuggling, and the Python one let a chunk extension with an unterminated quote
  carry a second request through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web, web_protocol
from aiohttp.http_parser import HttpRequestParserPy

from rules.decisions import Reason, Refuse, Refused

__all__ = [
    "check_head",
    "expect_handler",
    "head_size",
    "parser_refusal",
    "parser_settings",
]

_VERSIONS = frozenset({(1, 0), (1, 1)})


def parser_refusal() -> str | None:
    """Why the gateway must not serve with the HTTP parser aiohttp loaded, if it must not."""
    if getattr(web_protocol, "HttpRequestParser", None) is HttpRequestParserPy:
        return (
            "aiohttp is using its pure-Python HTTP parser (AIOHTTP_NO_EXTENSIONS is set, or its"
            " C extension is missing); the gateway only serves with the C parser, which is the"
            " one tested against request smuggling. Unset AIOHTTP_NO_EXTENSIONS or reinstall"
            " aiohttp with its compiled extension."
        )
    return None


def parser_settings(max_header_bytes: int) -> dict[str, Any]:
    """aiohttp request-handler arguments: per-line caps above the head limit (see above)."""
    cap = max(8190, 2 * max_header_bytes)
    return {"max_line_size": cap, "max_field_size": cap}


def head_size(request: web.BaseRequest) -> int:
    """Bytes of the request line and header lines as sent (CRLFs and ': ' included)."""
    line = len(request.method) + len(request.raw_path) + len("  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.raw_headers) + 2


def check_head(request: web.BaseRequest, max_header_bytes: int) -> None:
    """Refuse another HTTP version (505) and a head over the limit (431)."""
    version = (request.version.major, request.version.minor)
    if version not in _VERSIONS:
        raise Refused(
            Reason.HTTP_VERSION_NOT_SUPPORTED,
            f"HTTP/{version[0]}.{version[1]} is not supported; send HTTP/1.1 (or HTTP/1.0)",
        )
    size = head_size(request)
    if size > max_header_bytes:
        raise Refused(
            Reason.HEADERS_TOO_LARGE,
            f"the request head is {size} bytes, over the limit of {max_header_bytes}"
            " (server.max_header_bytes)",
        )


Admit = Callable[[web.Request], Awaitable[None]]  # raises Refused when the order is refused
Render = Callable[[web.Request, Refuse], web.StreamResponse]


def expect_handler(admit: Admit, render: Render, max_header_bytes: int) -> Callable[..., Any]:
    """An aiohttp ``expect_handler`` for an order route: admission before ``100 Continue``.

    aiohttp runs it before any middleware, so it checks the head too and renders its own
    refusal; a refusal closes the connection, since the client may still send the body.
    """

    async def handle(request: web.Request) -> web.StreamResponse | None:
        expect = request.headers.get(hdrs.EXPECT, "")
        try:
            check_head(request, max_header_bytes)
            if expect.lower() != "100-continue":
                raise Refused(Reason.EXPECTATION_FAILED, f"unsupported Expect: {expect}")
            await admit(request)
        except Refused as refused:
            response = render(request, refused.refusal)
            response.force_close()
            return response
        if request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the answer proper has not started yet
        return None

    return handle
