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
    "Tokens",
]


class Lifecycle(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
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

    async def set_algo(
        self, user_id: str, *, algo_id: str | None, algo_name: str | None
    ) -> bool: ...
    async def set_egress(self, user_id: str, ip: str | None) -> bool:
        """False: no such account."""

    async def set_broker_user_id(self, user_id: str, broker_user_id: str | None) -> bool: ...
    async def set_broker_session(
        self, user_id: str, dialect: str, session: BrokerSession | None
    ) -> bool:
        """False: no such account."""

    async def create_app(self, app: App) -> App: ...
    async def get_app(self, api_key: str) -> App | None: ...


class Credentials(Protocol):
    """Login sessions and the hot snapshot admission reads."""

    async def create_credential(self, credential: Credential, token_hash: str) -> Credential: ...
    async def snapshot(self, token_hash: str) -> Snapshot | None: ...
    async def verify(self, snapshot: Snapshot) -> None: ...
    async def revoke_credential(self, session_id: str) -> bool: ...
    async def sessions_of(self, user_id: str) -> tuple[list[Credential], dict[str, str]]: ...
    async def revoke_account(self, user_id: str) -> int: ...


class Tokens(Protocol):
    """API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9."""

    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken: ...
    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]: ...
    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None: ...
    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        """None: no such token, or no longer live (nothing written)."""

    async def live_analytics_token(self, user_id: str) -> Credential | None: ...
    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit: ...
    async def revoke_analytics_token(self, user_id: str) -> bool: ...


class Registry(Protocol):
    """The static-IP registry and families (SPEC §4, §9)."""

    async def get_registration(self, user_id: str) -> Registration: ...
    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted: ...
    async def family_members(self, parent_id: str) -> Sequence[Account]: ...
    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts: ...
    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit: ...
    async def remove_family_member(self, parent_id: str, member_id: str) -> bool: ...
    async def invite(self, parent_id: str, member_id: str, *, at: datetime) -> None: ...
    async def invitations(self, member_id: str) -> Sequence[Invitation]: ...
    async def drop_invitation(self, parent_id: str, member_id: str) -> bool: ...


class Admission(Protocol):
    """The rate window (SPEC §7), proving a snapshot current on shared stores."""

    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None: ...
    async def peek_admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> tuple[int, float | None]: ...


class OrderBook(Protocol):
    """Orders placed through the gateway: owner, instrument and side (SPEC §6)."""

    async def remember_order(self, order: KnownOrder) -> None: ...
    async def known_order(self, order_id: str) -> KnownOrder | None: ...


class Idempotency(Protocol):
    """``Idempotency-Key`` claims (SPEC §10)."""

    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None: ...
    async def peek_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None: ...
    async def finish_idempotent(self, record: IdempotencyRecord) -> None: ...
    async def release_idempotent(self, record: IdempotencyRecord) -> None: ...


class AuditLog(Protocol):
    """The audit log (SPEC §12)."""

    def audit(self, entry: AuditEntry) -> None: ...
    async def audit_query(
        self, *, user_id: str | None, limit: int
    ) -> Sequence[Mapping[str, Any]]: ...
