"""The request's edge facts, read once: who the client is, what it sent, which credential.

Shared by the pipeline and the gateway's own endpoints.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from aiohttp import web

from rules.clientip import client_ip as resolve_client_ip
from rules.decisions import Reason, Refused
from rules.types import IPAddress, IPNetwork

from .codec import unencodable
from .dialects.base import Dialect, Token
from .services import Services, token_hash
from .stores.base import Snapshot, StaleSnapshot
from .stores.roles import Credentials

_CLIENT_IP: web.RequestKey[IPAddress] = web.RequestKey("client_ip")


def client_ip(request: web.Request, trusted_proxies: tuple[IPNetwork, ...]) -> IPAddress:
    """The client IP (SPEC §3): the TCP peer, or the forwarded chain behind trusted proxies.
    Resolved once per request (the pipeline and the request log both ask)."""
    known = request.get(_CLIENT_IP)
    if known is None:
        known = request[_CLIENT_IP] = resolve_client_ip(
            request.remote,  # the TCP peer, read once per connection by aiohttp
            forwarded=request.headers.getall("Forwarded", []),
            x_forwarded_for=request.headers.getall("X-Forwarded-For", []),
            trusted=trusted_proxies,
        )
    return known


def request_client_ip(request: web.Request, services: Services) -> IPAddress:
    """:func:`client_ip` for the gateway's own endpoints, which hold the app's services."""
    return client_ip(request, services.config.server.trusted_proxies)


def check_text(request: web.Request) -> None:
    """Refuse header values and query parameters that are not UTF-8 text (issue 15).

    aiohttp keeps undecodable header bytes as lone surrogates (``surrogateescape``), which
    fail later wherever the value is hashed, stored or forwarded; yarl turns undecodable
    percent-escapes in the query into U+FFFD, so the gateway would decide on another value
    than the raw target it forwards.  Bodies are checked where they are parsed (``codec``).
    """
    for name, value in request.headers.items():
        if unencodable(value):
            raise Refused(Reason.BAD_REQUEST, f"the {name} header is not UTF-8 text")
    query = request.raw_path.partition("?")[2]
    if "%" not in query and query.isascii():
        return
    for part in query.split("&"):
        name, _, value = part.partition("=")
        try:
            unquote_to_bytes(name.replace("+", " ")).decode("utf-8")
            unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
        except UnicodeError as exc:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise Refused(
                Reason.BAD_REQUEST, f"the query parameter {shown!r} is not UTF-8 text"
            ) from exc


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Refused(Reason.BODY_TOO_LARGE, f"request body over {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise Refused(Reason.BODY_TOO_LARGE, f"request body over {limit} bytes") from exc


async def identify(
    store: Credentials, token: Token, dialect: Dialect | None = None, *, verify: bool = True
) -> Snapshot:
    """The credential's snapshot.  ``verify`` proves a cached snapshot current with a shared
    store; the order path skips it because ``Store.admit`` proves it in the same round trip."""
    return await identify_hash(
        store, token_hash(token.value), dialect, session_id=token.session_id, verify=verify
    )


async def identify_hash(
    store: Credentials,
    hashed: str,
    dialect: Dialect | None = None,
    *,
    session_id: str | None = None,
    verify: bool = True,
) -> Snapshot:
    """:func:`identify` by the token's hash (an explain of an audit record has no token)."""
    snapshot = await store.snapshot(hashed)
    if snapshot is not None and verify:
        try:
            await store.verify(snapshot)
        except StaleSnapshot:
            snapshot = await store.snapshot(hashed)
    if snapshot is None or (
        session_id is not None and session_id != snapshot.credential.session_id
    ):
        raise Refused(Reason.INVALID_TOKEN, "invalid or expired access token; log in again")
    kind = snapshot.credential.kind
    if dialect is not None and kind not in dialect.credential_kinds:
        raise Refused(
            Reason.INVALID_TOKEN,
            f"{dialect.name} routes do not accept {kind.value} credentials; log in for a session",
        )
    return snapshot
