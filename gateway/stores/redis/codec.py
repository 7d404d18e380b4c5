"""How the Redis store's values are written to and read from hashes and strings."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from rules.registry import Registration
from rules.sessions import Credential
from rules.types import CredentialKind, IPAddress, IPNetwork

from ..base import Account, ApiToken, BrokerSession, StoreUnavailable

EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


US = timedelta(microseconds=1)


def ts(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def dt(value: bytes | None) -> datetime | None:
    return datetime.fromisoformat(value.decode()) if value else None


def at(value: bytes | None) -> datetime:
    parsed = dt(value)
    if parsed is None:
        raise StoreUnavailable("redis: a stored timestamp is missing")
    return parsed


def us(value: datetime) -> int:
    """Microseconds since the epoch, exactly (a Lua number holds it without rounding)."""
    return (value - EPOCH_START) // US


def ip(value: bytes | None) -> IPAddress | None:
    return ipaddress.ip_address(value.decode()) if value else None


def cidrs_json(nets: Sequence[IPNetwork]) -> bytes:
    return orjson.dumps([str(n) for n in nets])


def cidrs(value: bytes | None) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n) for n in orjson.loads(value or b"[]"))


def fields(flat: Sequence[bytes] | Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """A hash as HGETALL answers it: a mapping from redis-py, a flat list from Lua."""
    if isinstance(flat, Mapping):
        return dict(flat)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def text(value: bytes | None) -> str | None:
    return value.decode() if value else None


AUTH = "upstream_auth:"  # account hash field prefix: one JSON header object per dialect


AUTH_BYTES = AUTH.encode()
BROKER = "broker_session:"  # account hash field prefix: one broker session JSON per dialect
BROKER_BYTES = BROKER.encode()


def account(h: Mapping[bytes, bytes]) -> Account:
    return Account(
        user_id=h[b"user_id"].decode(),
        name=h[b"name"].decode(),
        created_at=at(h.get(b"created_at")),
        parent_id=text(h.get(b"parent_id")),
        algo_id=text(h.get(b"algo_id")),
        algo_name=text(h.get(b"algo_name")),
        egress_ip=text(h.get(b"egress_ip")),
        broker_user_id=text(h.get(b"broker_user_id")),
        broker_sessions={
            name.removeprefix(BROKER_BYTES).decode(): BrokerSession.from_json(orjson.loads(value))
            for name, value in h.items()
            if name.startswith(BROKER_BYTES)
        },
        upstream_auth={
            name.removeprefix(AUTH_BYTES).decode(): orjson.loads(value)
            for name, value in h.items()
            if name.startswith(AUTH_BYTES)
        },
    )


def credential(h: Mapping[bytes, bytes]) -> Credential:
    return Credential(
        session_id=h[b"session_id"].decode(),
        user_id=h[b"user_id"].decode(),
        kind=CredentialKind(h[b"kind"].decode()),
        created_ip=ipaddress.ip_address(h[b"created_ip"].decode()),
        created_at=at(h.get(b"created_at")),
        expires_at=at(h.get(b"expires_at")),
        slot=text(h.get(b"slot")),
        allowed_cidrs=cidrs(h.get(b"allowed_cidrs")),
        revoked=h.get(b"revoked") == b"1",
    )


def registration(h: Mapping[bytes, bytes]) -> Registration:
    if not h:
        return Registration()
    return Registration(
        primary=ip(h.get(b"primary")),
        secondary=ip(h.get(b"secondary")),
        primary_updated_at=dt(h.get(b"primary_updated_at")),
        secondary_updated_at=dt(h.get(b"secondary_updated_at")),
        changed_at=dt(h.get(b"changed_at")),
        version=int(h.get(b"version", b"0")),
    )


def api_token(h: Mapping[bytes, bytes]) -> ApiToken:
    return ApiToken(
        lookup_id=h[b"lookup_id"].decode(),
        token_id=h[b"token_id"].decode(),
        user_id=h[b"user_id"].decode(),
        name=h[b"name"].decode(),
        kind=h[b"kind"].decode(),
        allowed_cidrs=cidrs(h.get(b"allowed_cidrs")),
        created_at=at(h.get(b"created_at")),
        expiry_at=at(h.get(b"expiry_at")),
        last_updated_at=at(h.get(b"last_updated_at")),
        revoked_at=dt(h.get(b"revoked_at")),
    )
