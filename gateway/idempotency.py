"""``Idempotency-Key`` on order routes (SPEC §10).

A repeat with the same key and the same request returns the stored answer without a second
upstream call; the same key with a different request gets 422; a repeat while the first is in
flight gets 409.  The claim is written durably before the upstream call, scoped per account,
and released again when the request is refused before it goes upstream (so the client can
retry with the same key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from rules.decisions import Reason, Refused

from .stores.base import IdempotencyRecord, Snapshot
from .stores.roles import Idempotency


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored answer of the first request with this key, to be sent again."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def response(self) -> web.Response:
        headers = dict(self.headers)
        headers["Idempotent-Replayed"] = "true"
        return web.Response(status=self.status, body=self.body, headers=headers)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a key asks for: nothing (no key), a fresh claim to finish, or a replay."""

    record: IdempotencyRecord | None = None
    replay: Replay | None = field(default=None)


NO_KEY = Claim()


def _intent(
    headers: Mapping[str, str], method: str, raw_path: str, snapshot: Snapshot, body: bytes
) -> IdempotencyRecord | None:
    """The claim a request's key would make, or None without a key."""
    key = headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= 255:
        raise Refused(Reason.BAD_REQUEST, "Idempotency-Key must be 1 to 255 characters")
    digest = hashlib.sha256(b"\0".join((method.encode(), raw_path.encode(), body))).hexdigest()
    return IdempotencyRecord(user_id=snapshot.account.user_id, key=key, body_hash=digest)


def _judge(record: IdempotencyRecord, existing: IdempotencyRecord | None) -> Claim:
    if existing is None:
        return Claim(record=record)
    if existing.body_hash != record.body_hash:
        raise Refused(
            Reason.IDEMPOTENCY_MISMATCH, "this Idempotency-Key was used with a different request"
        )
    if existing.status is None:
        raise Refused(Reason.CONFLICT, "a request with this Idempotency-Key is still in flight")
    return Claim(replay=Replay(existing.status, existing.headers, existing.body))


async def claim(store: Idempotency, request: web.Request, snapshot: Snapshot, body: bytes) -> Claim:
    record = _intent(request.headers, request.method, request.raw_path, snapshot, body)
    if record is None:
        return NO_KEY
    return _judge(record, await store.begin_idempotent(record))


async def peek(
    store: Idempotency,
    headers: Mapping[str, str],
    method: str,
    raw_path: str,
    snapshot: Snapshot,
    body: bytes,
) -> Claim:
    """What :func:`claim` would answer, claiming nothing (explain, SPEC §12): a fresh
    ``record`` means the key is free and would be claimed."""
    record = _intent(headers, method, raw_path, snapshot, body)
    if record is None:
        return NO_KEY
    return _judge(record, await store.peek_idempotent(record.user_id, record.key))


async def release(store: Idempotency, claimed: Claim) -> None:
    if claimed.record is not None:
        await store.release_idempotent(claimed.record)


async def finish(store: Idempotency, record: IdempotencyRecord, response: web.Response) -> None:
    """Store the answer the client got, for repeats of the same request."""
    await store.finish_idempotent(
        IdempotencyRecord(
            user_id=record.user_id,
            key=record.key,
            body_hash=record.body_hash,
            status=response.status,
            headers={
                str(k): v for k, v in response.headers.items() if k.lower() != "content-length"
            },
            body=response.body if isinstance(response.body, bytes) else b"",
        )
    )
