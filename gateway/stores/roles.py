"""The store's roles: one small interface per concern, so each caller depends on what it uses.

A backend (SQLite, Redis) implements every role over one connection; :class:`Store` in
``base`` is their sum.  Callers are typed against the narrowest role: the order pipeline
against :class:`Credentials`, :class:`Admission`, :class:`OrderBook`, :class:`Idempotency`
and :class:`AuditLog`; the family API against :class:`Registry`; and so on.

Stores keep facts and commit with preconditions: a write that a rule decided is applied only
if the facts it was decided on still hold, and its answer is a status value, never a refusal.
Refusals and their messages live in ``rules/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rules.family import JoinFacts
    from rules.orders import KnownOrder
    from rules.registry import IpCommitted, Registration
    from rules.sessions import Credential
    from rules.types import IPNetwork

    from .base import (
        Account,
        ApiToken,
        App,
        AuditEntry,
        BrokerSession,
        Commit,
        IdempotencyRecord,
        Invitation,
        LoginStep,
        Snapshot,
    )

__all__ = [
    "Accounts",
    "Admission",
    "AuditLog",
    "Credentials",
    "Idempotency",
    "Lifecycle",
    "OrderBook",
    "Registry",
    "Store",
    "Tokens",
]


class Lifecycle(Protocol):
    async def start(self) -> None:
        """Open connections, create schema."""

    async def close(self) -> None:
        """Flush pending writes and close."""

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot answer."""


class Accounts(Protocol):
    """Accounts, their API apps and their stored upstream credentials."""

    async def create_account(self, account: Account) -> Account:
        """Raise Duplicate when the user_id exists."""

    async def get_account(self, user_id: str) -> Account | None: ...
    async def list_accounts(self) -> Sequence[Account]: ...
    async def set_upstream_auth(
        self, user_id: str, dialect: str, headers: Mapping[str, str] | None
    ) -> bool:
        """False: no such account."""

    async def set_algo(self, user_id: str, *, algo_id: str | None, algo_name: str | None) -> bool:
        """Set (None clears) the account's algo id and name; False for an unknown account."""

    async def set_egress(self, user_id: str, ip: str | None) -> bool:
        """False: no such account."""

    async def set_broker_user_id(self, user_id: str, broker_user_id: str | None) -> bool:
        """Set (None clears) the client code the broker knows the account by; False: none."""

    async def set_broker_session(
        self, user_id: str, dialect: str, session: BrokerSession | None
    ) -> bool:
        """False: no such account."""

    async def hold_login_step(self, key: str, step: LoginStep) -> None:
        """Keep a relayed login's first step under ``key`` (its view token's hash) for every
        worker and instance; a later hold under the same key replaces it."""

    async def login_step(self, key: str, *, now: datetime) -> LoginStep | None:
        """The first step held under ``key``, or None when there is none or it expired."""

    async def drop_login_step(self, key: str) -> None: ...
    async def create_app(self, app: App) -> App: ...
    async def get_app(self, api_key: str) -> App | None: ...


class Credentials(Protocol):
    """Login sessions and the hot snapshot admission reads."""

    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        """Store a new credential; a login with a slot takes that slot from older sessions."""

    async def snapshot(self, token_hash: str) -> Snapshot | None:
        """The hot read: cached in-process, current after every local write."""

    async def verify(self, snapshot: Snapshot) -> None:
        """Raise StaleSnapshot when the snapshot was invalidated elsewhere (shared stores)."""

    async def revoke_credential(self, session_id: str) -> bool: ...
    async def sessions_of(self, user_id: str) -> tuple[list[Credential], dict[str, str]]:
        """The account's unrevoked credentials, oldest first, and its slot holders."""

    async def revoke_account(self, user_id: str) -> int:
        """Revoke every credential of the account; returns how many were live."""


class Tokens(Protocol):
    """API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9."""

    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        """Atomically write the metadata and the credential with its allowlist."""

    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        """The account's tokens, oldest first; revoked and expired ones only ``with_invalid``.

        A token invalidated without ``revoke_api_token`` (an IP change, an admin revocation)
        gets ``revoked_at = now`` the first time it is listed.
        """

    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        """Revoke at once (the next request sees it); None when the account has no such token."""

    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        """None: no such token, or no longer live (nothing written)."""

    async def live_analytics_token(self, user_id: str) -> Credential | None:
        """The account's unrevoked analytics credential (maybe expired), if any."""

    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        """Store an analytics credential if the account's unrevoked one is still ``retire``
        (a session id, revoked here; None: it has none); STALE and nothing written if not."""

    async def revoke_analytics_token(self, user_id: str) -> bool:
        """Revoke the account's live analytics token; False when it has none."""


class Registry(Protocol):
    """The static-IP registry and families (SPEC §4, §9)."""

    async def get_registration(self, user_id: str) -> Registration:
        """The account's own registration, read from the store (not the cache)."""

    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        """Atomically: check the version, check no account outside the family holds the IPs,
        write, and invalidate every credential of the account and its family members.

        VERSION_MOVED when the version moved, TAKEN (and the address) when another account
        or family holds one of the addresses; nothing is written then.
        """

    async def family_members(self, parent_id: str) -> Sequence[Account]: ...
    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        """What ``rules.family.check_join`` decides a join from."""

    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit:
        """Join if ``join_facts`` still answers ``expected`` (else STALE): the member trades
        from the parent's IPs and its sessions end; the invitation, if any, is used up.  Its
        own registration stays, reserving its addresses to it and keeping its last change."""

    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        """End the membership and the member's sessions; its former addresses are free again,
        its last change time stays (its change period keeps running)."""

    async def invite(self, parent_id: str, member_id: str, *, at: datetime) -> None:
        """Record (or renew) the parent's invitation; nothing about the member changes."""

    async def invitations(self, member_id: str) -> Sequence[Invitation]:
        """The member's invitations, oldest first, expired ones included."""

    async def drop_invitation(self, parent_id: str, member_id: str) -> bool:
        """Forget the invitation (declined); False when there was none."""


class Admission(Protocol):
    """The rate window (SPEC §7), proving a snapshot current on shared stores."""

    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        """Take ``count`` rate-limit slots at once (all or none) for the snapshot's account:
        None, or Retry-After seconds (``rules.ratelimit.SlidingWindowLimiter``'s algorithm).

        ``now`` is wall-clock epoch seconds, so that instances sharing a store share windows.

        Raises StaleSnapshot when the snapshot no longer holds (shared stores only).
        """

    async def peek_admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> tuple[int, float | None]:
        """The admissions in the account's window and what :meth:`admit` would answer now,
        taking nothing (explain, SPEC §12)."""


class OrderBook(Protocol):
    """Orders placed through the gateway: owner, instrument and side (SPEC §6)."""

    async def remember_order(self, order: KnownOrder) -> None: ...
    async def known_order(self, order_id: str) -> KnownOrder | None: ...


class Idempotency(Protocol):
    """``Idempotency-Key`` claims (SPEC §10)."""

    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Durably claim (user_id, key): None when claimed now, else the existing record."""

    async def peek_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        """The record of (user_id, key), claiming nothing (explain, SPEC §12)."""

    async def finish_idempotent(self, record: IdempotencyRecord) -> None: ...
    async def release_idempotent(self, record: IdempotencyRecord) -> None:
        """Drop a claim whose request was refused before it went upstream."""


class AuditLog(Protocol):
    """The audit log (SPEC §12)."""

    def audit(self, entry: AuditEntry) -> None:
        """Buffer a decision for the store's flusher (close() flushes what is left).

        Never waits and never fails: a decision stands whether or not its record is written
        yet, and a write that fails keeps the record for the next flush."""

    async def audit_query(self, *, user_id: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        """The newest decisions first."""


class Store(
    Lifecycle,
    Accounts,
    Credentials,
    Tokens,
    Registry,
    Admission,
    OrderBook,
    Idempotency,
    AuditLog,
    Protocol,
):
    """Every role over one connection: what ``create_app`` builds (SQLite or Redis) and hands
    out role by role.  The backends match it by shape; mypy checks them where one is built."""
