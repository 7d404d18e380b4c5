"""What the upstream learns about the account behind a request (SPEC §10).

Either the gateway's identity headers (``X-Gateway-User-Id``, the session id and, with
``upstream.shared_secret``, an HMAC signature over method, request target, user id,
timestamp and the body's SHA-256), or,
when the account has a stored upstream credential for the dialect, that credential instead: a
real broker authenticates the account by it and never learns the gateway's ids.  Orders, read
routes and the LTP fetched on an order's behalf all go through :func:`upstream_headers`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .clock import Clock
from .stores.base import Snapshot
from .upstream import sign


def public_session_id(session_id: str) -> str:
    """The session as the upstream may know it: stable per session, never the credential.

    A kotak client presents its session id as ``Sid``, half of its credential (SPEC §10: the
    client's gateway credentials are never forwarded), so the upstream gets a one-way
    SHA-256 of it instead: enough to tell sessions apart and correlate their orders, useless
    for logging in.  The session id is 128 random bits, so the digest cannot be reversed.
    """
    digest = hashlib.sha256(b"order-gateway public session id\0" + session_id.encode())
    return digest.hexdigest()[:32]


def upstream_headers(
    snapshot: Snapshot,
    dialect: str,
    method: str,
    target: str,
    base: Mapping[str, str],
    *,
    body: bytes | None,
    secret: str,
    clock: Clock,
) -> dict[str, str]:
    """``base`` (already allowlisted) plus the account's identity for the upstream; with a
    ``secret`` (``upstream.shared_secret``) the identity is signed at ``clock``'s time, over
    the ``target`` (path and query) and ``body`` exactly as they are sent."""
    stored = snapshot.account.upstream_auth.get(dialect)
    if stored:
        names = {name.lower() for name in stored}
        headers = {name: value for name, value in base.items() if name.lower() not in names}
        headers.update(stored)
        return headers
    headers = dict(base)
    user_id = snapshot.account.user_id
    headers["X-Gateway-User-Id"] = user_id
    headers["X-Gateway-Session-Id"] = public_session_id(snapshot.credential.session_id)
    if secret:
        stamp = str(int(clock.now().timestamp()))
        headers["X-Gateway-Timestamp"] = stamp
        headers["X-Gateway-Signature"] = sign(secret, method, target, user_id, stamp, body or b"")
    return headers
