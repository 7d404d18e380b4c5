"""The Tokens role: API tokens and the analytics token (SPEC §9).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.api.analytics import issue
from gateway.api.tokens import replace_allowlist
from gateway.stores.base import (
    ApiToken,
    Commit,
    Store,
)
from rules.decisions import Reason, Refused
from rules.sessions import Credential
from rules.types import CredentialKind, IPNetwork

from .values import (
    LATER,
    T0,
    accounts,
    credential,
    is_live,
    reason,
    token,
)

# API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9 ---------------

NET_A = ipaddress.ip_network("10.0.0.0/8")
NET_B = ipaddress.ip_network("2001:db8::/32")


async def api_token(
    store: Store,
    lookup_id: str,
    user_id: str = "u1",
    *,
    kind: str = "jwt",
    cidrs: tuple[IPNetwork, ...] = (),
    created_at: datetime = T0,
) -> ApiToken:
    """Create an API token whose session id is ``tok-<lookup_id>``."""
    cred = replace(
        credential(f"tok-{lookup_id}", user_id, slot=None, kind=CredentialKind.API_TOKEN),
        allowed_cidrs=cidrs,
        created_at=created_at,
    )
    created = ApiToken(
        lookup_id=lookup_id,
        token_id=cred.session_id,
        user_id=user_id,
        name=f"token {lookup_id}",
        kind=kind,
        allowed_cidrs=cidrs,
        created_at=created_at,
        expiry_at=cred.expires_at,
        last_updated_at=created_at,
    )
    assert await store.create_api_token(created, cred, token(cred.session_id)) == created
    return created


async def listed(store: Store, user_id: str = "u1", **options: Any) -> list[str]:
    options = {"kind": None, "with_invalid": False, "now": LATER, **options}
    return [t.lookup_id for t in await store.api_tokens(user_id, **options)]


async def test_api_token_reads_back_with_its_allowlisted_credential(store: Store) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1", cidrs=(NET_A, NET_B))

    assert list(await store.api_tokens("u1", kind=None, with_invalid=False, now=LATER)) == [created]
    snap = await store.snapshot(token("tok-l1"))
    assert snap is not None
    assert snap.credential.kind is CredentialKind.API_TOKEN
    assert snap.credential.allowed_cidrs == (NET_A, NET_B)
    assert dict(snap.slot_holders) == {}


async def test_api_tokens_are_per_account_oldest_first_and_filtered_by_kind(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "late", created_at=T0 + timedelta(minutes=5))
    await api_token(store, "b-first", kind="api_key")
    await api_token(store, "a-second")
    await api_token(store, "theirs", "u2")

    assert await listed(store) == ["b-first", "a-second", "late"]
    assert await listed(store, kind="jwt") == ["a-second", "late"]
    assert await listed(store, kind="api_key") == ["b-first"]
    assert await listed(store, "u2") == ["theirs"]
    assert await listed(store, "u3") == []


async def test_revoked_and_expired_api_tokens_are_listed_only_with_invalid(store: Store) -> None:
    await accounts(store, "u1")
    await api_token(store, "live")
    await api_token(store, "revoked")
    await store.revoke_api_token("u1", "revoked", now=LATER)

    assert await listed(store) == ["live"]
    assert await listed(store, with_invalid=True) == ["live", "revoked"]
    expired = T0 + timedelta(days=1)  # every token here expires one day after T0
    assert await listed(store, now=expired) == []
    assert await listed(store, now=expired, with_invalid=True) == ["live", "revoked"]


async def test_revoke_api_token_ends_it_at_once_and_keeps_the_first_revocation_time(
    store: Store,
) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1")
    await api_token(store, "l2")

    revoked = await store.revoke_api_token("u1", "l1", now=LATER)
    assert revoked == replace(created, revoked_at=LATER, last_updated_at=LATER)
    assert not await is_live(store, "tok-l1")
    assert await is_live(store, "tok-l2")
    again = await store.revoke_api_token("u1", "l1", now=LATER + timedelta(minutes=1))
    assert again == revoked


async def test_revoke_api_token_of_another_account_or_unknown_is_none(store: Store) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "l1")

    assert await store.revoke_api_token("u2", "l1", now=LATER) is None
    assert await store.revoke_api_token("u1", "nope", now=LATER) is None
    assert await is_live(store, "tok-l1")


async def test_token_invalidated_elsewhere_is_listed_revoked_from_its_first_listing(
    store: Store,
) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1")
    await store.revoke_account("u1")  # an admin revocation, or an IP change

    first = await store.api_tokens("u1", kind=None, with_invalid=True, now=LATER)
    assert list(first) == [replace(created, revoked_at=LATER, last_updated_at=LATER)]
    later = LATER + timedelta(hours=1)
    assert list(await store.api_tokens("u1", kind=None, with_invalid=True, now=later)) == list(
        first
    )
    assert await listed(store) == []


async def test_replaced_allowlist_is_seen_by_the_next_snapshot(store: Store) -> None:
    await accounts(store, "u1")
    created = await api_token(store, "l1", cidrs=(NET_A,))
    before = await store.snapshot(token("tok-l1"))
    assert before is not None

    replaced = await store.replace_api_token_cidrs("u1", "l1", (NET_B,), now=LATER)
    assert replaced == replace(created, allowed_cidrs=(NET_B,), last_updated_at=LATER)
    snap = await store.snapshot(token("tok-l1"))
    assert snap is not None
    assert snap.credential.allowed_cidrs == (NET_B,)
    assert await store.replace_api_token_cidrs("u1", "l1", (), now=LATER) == replace(
        created, allowed_cidrs=(), last_updated_at=LATER
    )
    unrestricted = await store.snapshot(token("tok-l1"))
    assert unrestricted is not None
    assert unrestricted.credential.allowed_cidrs == ()


async def test_replacing_the_allowlist_of_a_revoked_or_expired_token_is_a_conflict(
    store: Store,
) -> None:
    await accounts(store, "u1", "u2")
    await api_token(store, "revoked", cidrs=(NET_A,))
    await api_token(store, "expires", cidrs=(NET_A,))
    await store.revoke_api_token("u1", "revoked", now=LATER)

    for lookup_id, now in (("revoked", LATER), ("expires", T0 + timedelta(days=1))):
        with pytest.raises(Refused) as exc:
            await replace_allowlist(store, "u1", lookup_id, (NET_B,), now=now)
        assert reason(exc) is Reason.CONFLICT
        # The store's precondition alone: a token that is no longer live is not written.
        assert await store.replace_api_token_cidrs("u1", lookup_id, (NET_B,), now=now) is None
    for user_id, lookup_id in (("u1", "nope"), ("u2", "expires")):
        with pytest.raises(Refused) as exc:
            await replace_allowlist(store, user_id, lookup_id, (NET_B,), now=LATER)
        assert reason(exc) is Reason.NOT_FOUND
        assert await store.replace_api_token_cidrs(user_id, lookup_id, (NET_B,), now=LATER) is None
    tokens = await store.api_tokens("u1", kind=None, with_invalid=True, now=LATER)
    assert [t.allowed_cidrs for t in tokens] == [(NET_A,), (NET_A,)]


def analytics(session_id: str, user_id: str = "u1", *, at: datetime = T0) -> Credential:
    cred = credential(session_id, user_id, slot=None, kind=CredentialKind.ANALYTICS)
    return replace(cred, created_at=at, expires_at=at + timedelta(days=365))


async def test_one_live_analytics_token_per_account(store: Store) -> None:
    await accounts(store, "u1", "u2")
    first = analytics("an1")
    await issue(store, first, token("an1"))
    snap = await store.snapshot(token("an1"))
    assert snap is not None
    assert snap.credential == first
    assert await store.live_analytics_token("u1") == first

    with pytest.raises(Refused) as exc:
        await issue(store, analytics("an2"), token("an2"))
    assert reason(exc) is Reason.CONFLICT
    assert await store.snapshot(token("an2")) is None
    assert await is_live(store, "an1")
    # Another account has its own.
    await issue(store, analytics("other", "u2"), token("other"))
    assert await is_live(store, "other")


async def test_an_analytics_token_decided_on_facts_that_moved_is_stale(store: Store) -> None:
    await accounts(store, "u1")
    # Decided "none to retire", but one was issued meanwhile: nothing is written.
    await issue(store, analytics("an1"), token("an1"))
    late = await store.create_analytics_token(analytics("an2"), token("an2"), retire=None)
    assert late is Commit.STALE
    assert await store.snapshot(token("an2")) is None
    assert await is_live(store, "an1")
    # Decided "retire an1", but an1 was revoked meanwhile: nothing is written either.
    await store.revoke_analytics_token("u1")
    gone = await store.create_analytics_token(analytics("an3"), token("an3"), retire="an1")
    assert gone is Commit.STALE
    assert await store.snapshot(token("an3")) is None
    assert await store.live_analytics_token("u1") is None
    ok = await store.create_analytics_token(analytics("an4"), token("an4"), retire=None)
    assert ok is Commit.DONE
    assert await is_live(store, "an4")


async def test_revoked_analytics_token_can_be_replaced(store: Store) -> None:
    await accounts(store, "u1")
    assert await store.revoke_analytics_token("u1") is False
    await issue(store, analytics("an1"), token("an1"))

    assert await store.revoke_analytics_token("u1") is True
    assert await store.revoke_analytics_token("u1") is False
    assert not await is_live(store, "an1")
    await issue(store, analytics("an2"), token("an2"))
    assert await is_live(store, "an2")


async def test_an_expired_analytics_token_no_longer_counts(store: Store) -> None:
    await accounts(store, "u1")
    await issue(store, analytics("an1"), token("an1"))
    a_year_on = T0 + timedelta(days=365)

    second = analytics("an2", at=a_year_on)
    await issue(store, second, token("an2"))
    assert await store.live_analytics_token("u1") == second
    old = await store.snapshot(token("an1"))
    assert old is not None
    assert old.credential.revoked
    assert await store.revoke_analytics_token("u1") is True
    assert not await is_live(store, "an2")
