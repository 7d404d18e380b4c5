"""Small builders for the values stores keep: accounts, credentials, registrations."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from gateway.api.family import join
from gateway.stores.base import Account, IdempotencyRecord, Snapshot, Store
from rules.decisions import Reason, Refused
from rules.registry import Registration, check_ip_commit
from rules.sessions import Credential, check_live
from rules.types import CredentialKind

T0 = datetime(2026, 4, 6, 9, 15, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)  # a "now" inside every credential's lifetime


def account(user_id: str, name: str = "") -> Account:
    return Account(user_id=user_id, name=name or f"Account {user_id}", created_at=T0)


def credential(
    session_id: str,
    user_id: str,
    *,
    ip: str = "203.0.113.10",
    slot: str | None = "primary",
    kind: CredentialKind = CredentialKind.LOGIN,
) -> Credential:
    return Credential(
        session_id=session_id,
        user_id=user_id,
        kind=kind,
        created_ip=ipaddress.ip_address(ip),
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
        slot=slot,
    )


def token(session_id: str) -> str:
    """The stored hash of a session's token; any unique string serves a store."""
    return f"hash-of-{session_id}"


def registration(primary: str, secondary: str | None = None, *, version: int = 1) -> Registration:
    return Registration(
        primary=ipaddress.ip_address(primary),
        secondary=None if secondary is None else ipaddress.ip_address(secondary),
        primary_updated_at=T0,
        secondary_updated_at=None if secondary is None else T0,
        changed_at=T0,
        version=version,
    )


def idem(user_id: str, key: str, body_hash: str = "h1") -> IdempotencyRecord:
    return IdempotencyRecord(user_id=user_id, key=key, body_hash=body_hash)


async def ip_change(
    store: Store, user_id: str, new: Registration, *, expected_version: int
) -> None:
    """A decided IP change committed, its status mapped to the refusal as the API does."""
    check_ip_commit(await store.apply_ip_change(user_id, new, expected_version=expected_version))


async def family(store: Store, parent_id: str, *member_ids: str, max_members: int = 10) -> None:
    """Members joined as the API joins them: decided in rules.family, committed by the store."""
    for member_id in member_ids:
        await join(store, parent_id, member_id, max_members=max_members)


async def login(
    store: Store, session_id: str, user_id: str, *, ip: str = "203.0.113.10", slot: str = "primary"
) -> Snapshot:
    """Create a login session and return its snapshot."""
    await store.create_credential(
        credential(session_id, user_id, ip=ip, slot=slot), token(session_id)
    )
    snap = await store.snapshot(token(session_id))
    assert snap is not None
    return snap


IP_A = "203.0.113.10"
IP_B = "203.0.113.20"
IP_C = "198.51.100.7"
IP_V6 = "2001:db8::7"


async def accounts(store: Store, *user_ids: str) -> None:
    for user_id in user_ids:
        await store.create_account(account(user_id))


async def is_live(store: Store, session_id: str) -> bool:
    """What admission sees: a credential that is gone or revoked fails rules.check_live."""
    snap = await store.snapshot(token(session_id))
    try:
        check_live(None if snap is None else snap.credential, now=LATER)
    except Refused as exc:
        refused = exc.refusal.reason
    else:
        return True
    assert refused is Reason.INVALID_TOKEN
    return False


def reason(exc: pytest.ExceptionInfo[Refused]) -> Reason:
    return exc.value.refusal.reason


async def get(store: Store, user_id: str) -> Account:
    found = await store.get_account(user_id)
    assert found is not None
    return found
