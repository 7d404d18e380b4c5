"""The web console (issue 14): plain HTML, CSS and JavaScript modules served by the gateway
itself at ``/console/``, on the same listener, with no build step.

The page talks to the gateway's own API with the session in ``Authorization: Bearer`` (no
cookies, so no CSRF surface) and is served under a strict Content-Security-Policy: nothing
inline, nothing from another origin, never framed.  Only the files shipped in ``static/`` are
served, by name, from a table built once at startup.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from rules.decisions import Reason, Refused

STATIC = Path(__file__).parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# 'self' only; no 'unsafe-inline' for scripts or styles (the JavaScript sets no style
# attributes either), and the page may not be framed (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _load() -> dict[str, tuple[bytes, str]]:
    return {
        path.name: (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(STATIC.iterdir())
        if path.suffix in _TYPES
    }


def add_routes(router: web.UrlDispatcher) -> None:
    files = _load()

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name") or "index.html"
        found = files.get(name)
        if found is None:
            raise Refused(Reason.NOT_FOUND, f"the console has no file {name!r}")
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type, **SECURITY_HEADERS})

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=308, headers={"Location": "/console/", **SECURITY_HEADERS})

    router.add_get("/console", redirect)
    router.add_get("/console/", serve)
    router.add_get("/console/{name}", serve)
