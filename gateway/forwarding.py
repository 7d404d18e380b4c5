"""What the upstream learns about the account behind a request (SPEC §10).

Either the gateway's identity headers (``X-Gateway-User-Id``, the session id and, with
``upstream.shared_secret``, an HMAC signature over method, request target, user id,
timestamp and the body's SHA-256), or,
when the account has a stored upstream credential for the dialect, that credential instead: a
real broker authenticates the account by it and never learns the gateway's ids.  Orders, read
routes and the LTP fetched on an order's behalf all go through :func:`upstream_headers`.

Behind a real broker (SPEC §14) a broker session kept by the login relay comes first while it
serves (``rules.relay.broker_session_serves``), and :func:`via` says where the request goes:
from the account's egress address, to the base URL the broker gave that session (kotak's
``baseUrl``) or the dialect's configured one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TypedDict

from rules.relay import broker_session_serves

from .clock import Clock
from .stores.base import Account, BrokerSession, Snapshot
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


class Via(TypedDict):
    egress: str | None
    base_url: str | None


def serving_broker_session(
    account: Account,
    dialect: str,
    *,
    now: datetime,
    registration_version: int,
    egress_ip: str | None,
) -> BrokerSession | None:
    """The account's kept broker session for the dialect, if it still serves given the
    account's effective registration version and egress address."""
    held = account.broker_sessions.get(dialect)
    if held is None or not broker_session_serves(
        expires_at=held.expires_at,
        registration_version=held.registration_version,
        egress_ip=held.egress_ip,
        now=now,
        current_version=registration_version,
        current_egress=egress_ip,
    ):
        return None
    return held


def live_broker_session(snapshot: Snapshot, dialect: str, now: datetime) -> BrokerSession | None:
    return serving_broker_session(
        snapshot.account,
        dialect,
        now=now,
        registration_version=snapshot.registration.version,
        egress_ip=snapshot.egress_ip,
    )


def via(snapshot: Snapshot, dialect: str, now: datetime) -> Via:
    """``Upstream.send``'s ``egress`` and ``base_url`` for a request made for the account."""
    held = live_broker_session(snapshot, dialect, now)
    return Via(egress=snapshot.egress_ip, base_url=held.base_url if held else None)


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
    held = live_broker_session(snapshot, dialect, clock.now())
    stored = held.headers if held is not None else snapshot.account.upstream_auth.get(dialect)
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
