"""The console's files: served by the gateway itself, under a strict security policy."""

from __future__ import annotations

import re

import pytest

from gateway.console import STATIC

from ..harness import Harness

FILES = sorted(p.name for p in STATIC.iterdir())


@pytest.mark.parametrize("name", ["", *FILES])
async def test_every_file_carries_the_security_headers(gw: Harness, name: str) -> None:
    reply = await gw.request("GET", f"/console/{name}")
    assert reply.status == 200
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in reply.headers


async def test_types_and_the_redirect(gw: Harness) -> None:
    assert (
        (await gw.request("GET", "/console/console.js"))
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    assert (await gw.request("GET", "/console/")).headers["Content-Type"].startswith("text/html")
    async with gw.client().get(gw.url + "/console", allow_redirects=False) as resp:
        assert resp.status == 308
        assert resp.headers["Location"] == "/console/"


async def test_only_shipped_files_are_served(gw: Harness) -> None:
    for path in ("/console/nope.js", "/console/__init__.py"):
        reply = await gw.request("GET", path)
        assert reply.status == 404
        assert reply.data["error"] == "NOT_FOUND"


def test_nothing_inline_and_nothing_from_another_origin() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), "inline script"
            assert "<style" not in text and " style=" not in text
            assert not re.search(r"\son[a-z]+=", text), "inline event handler"
        if path.suffix == ".js":
            assert "innerHTML" not in text and ".style" not in text and "eval(" not in text
            assert "document.cookie" not in text
