"""The store interface: what the gateway keeps, and the atomic operations it needs.

Two implementations pass the same contract tests (``tests/gateway/stores``): SQLite for one
process, Redis for several workers and instances (SPEC §11).

Admission must not cost a store round trip per check, so the order path reads one
:class:`Snapshot` (credential, account, effective registration, slot holders), which a store
caches in-process, and then makes one :meth:`Store.admit` call that takes a rate-limit slot.
A store that can be changed by another process (Redis) also uses ``admit`` to prove the
snapshot is still current, raising :class:`StaleSnapshot` so the caller re-reads it: that is
how an IP change or a revocation on one instance is seen by every other before it answers.

Exceptions::

    StoreError
    ├── StoreUnavailable   the backing store did not answer: order routes fail closed (503)
    ├── StaleSnapshot      the cached snapshot was invalidated elsewhere: read it again
    └── Duplicate          a create found the key taken (an account's user_id)

Stores keep facts and decide nothing: a write that a rule in ``rules/`` decided is committed
only if the facts it was decided on still hold, and answers a status value (:class:`Commit`,
``rules.registry.IpCommitted``), never a refusal.  The caller decides again on ``STALE``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from rules.family import JoinFacts
from rules.orders import KnownOrder
from rules.registry import IpCommitted, Registration
from rules.sessions import Credential
from rules.types import IPNetwork


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    pass


class StaleSnapshot(StoreError):
    pass


class Duplicate(StoreError):
    """The key of a create is taken; nothing was written."""


class Commit(enum.Enum):
    """A precondition write's answer."""

    DONE = "done"
    STALE = "stale"  # the facts it was decided on moved: nothing written, decide again


# Reads, decisions and commits a caller tries before it answers 409: facts that move three
# times in a row under one request are contention, not a reason to loop.
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class BrokerSession:
    """A broker session the login relay kept for an account (SPEC §14): the headers it is
    presented by, the broker's base URL for the account (kotak's ``baseUrl``), and the facts it
    was born on.  It serves until ``expires_at`` (the daily logout) and only while the account's
    registration version and egress address are still those it was created with."""

    headers: Mapping[str, str] = field(repr=False, hash=False)
    since: datetime
    expires_at: datetime
    base_url: str | None = None
    registration_version: int = 0
    egress_ip: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "headers": dict(self.headers),
            "since": self.since.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "base_url": self.base_url,
            "registration_version": self.registration_version,
            "egress_ip": self.egress_ip,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BrokerSession:
        return cls(
            headers=dict(data["headers"]),
            since=datetime.fromisoformat(data["since"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            base_url=data.get("base_url"),
            registration_version=int(data.get("registration_version", 0)),
            egress_ip=data.get("egress_ip"),
        )


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    name: str
    created_at: datetime
    parent_id: str | None = None  # set on a family member: the parent's IPs apply
    algo_id: str | None = None  # per-account override of rules.algo_id (SPEC §8)
    algo_name: str | None = None  # the algo's registered name, per account (SPEC §8)
    # The local address the account's upstream traffic leaves from (SPEC §14): what the
    # broker sees and what the account registered there.  None: the host's default route.
    egress_ip: str | None = None
    # The client code the broker knows the account by, when it is not the user_id (SPEC §14).
    broker_user_id: str | None = None
    # dialect -> header -> value: the account's broker credential, sent instead of the
    # gateway's identity headers (SPEC §10).  A secret: kept out of repr, logs and answers.
    upstream_auth: Mapping[str, Mapping[str, str]] = field(
        default_factory=dict, repr=False, hash=False
    )
    # dialect -> the broker session the login relay keeps (SPEC §14); a secret like the above.
    broker_sessions: Mapping[str, BrokerSession] = field(
        default_factory=dict, repr=False, hash=False
    )


@dataclass(frozen=True, slots=True)
class App:
    api_key: str
    user_id: str
    secret_hash: str = field(repr=False)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All admission needs to know about one credential, read together."""

    credential: Credential
    account: Account
    registration: Registration  # the effective one: the parent's for a family member
    slot_holders: Mapping[str, str]  # "primary"/"secondary" -> session_id of the account
    # Shared stores (Redis) prove a cached snapshot current by these counters: every write
    # that invalidates it increments the account's epoch (and a parent's IP change its own).
    epoch: int = 0  # the account's invalidation epoch when read
    parent_epoch: int = 0  # the family parent's epoch when read; 0 without a parent
    # The effective egress address (SPEC §14): the account's own, else its family parent's.
    egress_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token's metadata (SPEC §9, Paradex model); its credential holds the secret's
    hash, the allowlist and the expiry, and has ``session_id == token_id``."""

    lookup_id: str
    token_id: str
    user_id: str
    name: str
    kind: str  # the token_type it was created with: "jwt" or "api_key"
    allowed_cidrs: tuple[IPNetwork, ...]
    created_at: datetime
    expiry_at: datetime
    last_updated_at: datetime
    revoked_at: datetime | None = None

    def live_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and now < self.expiry_at


@dataclass(frozen=True, slots=True)
class Invitation:
    """A parent's pending invitation to join its family, as its invitee lists it (SPEC §9)."""

    parent_id: str
    name: str  # the parent account's
    invited_at: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    body_hash: str
    status: int | None = None  # None while the first request is in flight
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record as the store keeps it: a JSON object, indexed by time and account."""

    at: str
    user_id: str | None
    record: bytes  # the JSON object, encoded once by whoever wrote it

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> AuditEntry:
        """An entry for a plain record (values JSON can't hold are written as strings)."""
        user_id = record.get("user_id")
        return cls(
            str(record.get("at", "")),
            None if user_id is None else str(user_id),
            orjson.dumps(record, default=str),
        )


class Store(abc.ABC):
    """Accounts, apps, credentials, the static-IP registry, known orders, audit, rate."""

    # lifecycle
    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, create schema."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush pending writes and close."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot answer."""

    # accounts and apps
    @abc.abstractmethod
    async def create_account(self, account: Account) -> Account:
        """Raise Duplicate when the user_id exists."""

    @abc.abstractmethod
    async def get_account(self, user_id: str) -> Account | None: ...

    @abc.abstractmethod
    async def list_accounts(self) -> Sequence[Account]: ...

    @abc.abstractmethod
    async def set_upstream_auth(
        self, user_id: str, dialect: str, headers: Mapping[str, str] | None
    ) -> bool:
        """Store (replace) the account's upstream credential for a dialect; None removes it.

        Seen by the very next snapshot on every instance.  False for an unknown account.
        """

    @abc.abstractmethod
    async def set_algo(self, user_id: str, *, algo_id: str | None, algo_name: str | None) -> bool:
        """Set (None clears) the account's algo id and name; False for an unknown account."""

    @abc.abstractmethod
    async def set_egress(self, user_id: str, ip: str | None) -> bool:
        """Set (None clears) the account's egress address, moving its epoch so every cached
        snapshot (its own and its family members') reads the new one; False: no account."""

    @abc.abstractmethod
    async def set_broker_user_id(self, user_id: str, broker_user_id: str | None) -> bool:
        """Set (None clears) the client code the broker knows the account by; False: none."""

    @abc.abstractmethod
    async def set_broker_session(
        self, user_id: str, dialect: str, session: BrokerSession | None
    ) -> bool:
        """Keep (None ends) the account's broker session for a dialect, moving its epoch so
        the next snapshot carries it; False for an unknown account."""

    @abc.abstractmethod
    async def create_app(self, app: App) -> App: ...

    @abc.abstractmethod
    async def get_app(self, api_key: str) -> App | None: ...

    # credentials
    @abc.abstractmethod
    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        """Store a new credential; a login with a slot takes that slot from older sessions."""

    @abc.abstractmethod
    async def snapshot(self, token_hash: str) -> Snapshot | None:
        """The hot read: cached in-process, current after every local write."""

    @abc.abstractmethod
    async def revoke_credential(self, session_id: str) -> bool: ...

    @abc.abstractmethod
    async def sessions_of(self, user_id: str) -> tuple[list[Credential], dict[str, str]]:
        """The account's unrevoked credentials, oldest first, and its slot holders."""

    @abc.abstractmethod
    async def revoke_account(self, user_id: str) -> int:
        """Revoke every credential of the account; returns how many were live."""

    # API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9
    @abc.abstractmethod
    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        """Atomically write the metadata and the credential with its allowlist."""

    @abc.abstractmethod
    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        """The account's tokens, oldest first; revoked and expired ones only ``with_invalid``.

        A token invalidated without ``revoke_api_token`` (an IP change, an admin revocation)
        gets ``revoked_at = now`` the first time it is listed.
        """

    @abc.abstractmethod
    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        """Revoke at once (the next request sees it); None when the account has no such token."""

    @abc.abstractmethod
    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        """Replace the whole allowlist of a live token, seen by the next request; None (and
        nothing written) when the account has no such token or it is revoked or expired."""

    @abc.abstractmethod
    async def live_analytics_token(self, user_id: str) -> Credential | None:
        """The account's unrevoked analytics credential (maybe expired), if any."""

    @abc.abstractmethod
    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        """Store an analytics credential if the account's unrevoked one is still ``retire``
        (a session id, revoked here; None: it has none); STALE and nothing written if not."""

    @abc.abstractmethod
    async def revoke_analytics_token(self, user_id: str) -> bool:
        """Revoke the account's live analytics token; False when it has none."""

    async def verify(self, snapshot: Snapshot) -> None:  # noqa: B027 - no-op for one process
        """Raise StaleSnapshot when the snapshot was invalidated elsewhere (shared stores)."""

    # admission
    @abc.abstractmethod
    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        """Take ``count`` rate-limit slots at once (all or none) for the snapshot's account:
        None, or Retry-After seconds (``rules.ratelimit.SlidingWindowLimiter``'s algorithm).

        ``now`` is wall-clock epoch seconds, so that instances sharing a store share windows.

        Raises StaleSnapshot when the snapshot no longer holds (shared stores only).
        """

    @abc.abstractmethod
    async def peek_admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> tuple[int, float | None]:
        """The admissions in the account's window and what :meth:`admit` would answer now,
        taking nothing (explain, SPEC §12)."""

    # registry
    @abc.abstractmethod
    async def get_registration(self, user_id: str) -> Registration:
        """The account's own registration, read from the store (not the cache)."""

    @abc.abstractmethod
    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        """Atomically: check the version, check no account outside the family holds the IPs,
        write, and invalidate every credential of the account and its family members.

        VERSION_MOVED when the version moved, TAKEN (and the address) when another account
        or family holds one of the addresses; nothing is written then.
        """

    # families
    @abc.abstractmethod
    async def family_members(self, parent_id: str) -> Sequence[Account]: ...

    @abc.abstractmethod
    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        """What ``rules.family.check_join`` decides a join from."""

    @abc.abstractmethod
    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit:
        """Join if ``join_facts`` still answers ``expected`` (else STALE): the member trades
        from the parent's IPs and its sessions end; the invitation, if any, is used up.  Its
        own registration stays, reserving its addresses to it and keeping its last change."""

    @abc.abstractmethod
    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        """End the membership and the member's sessions; its former addresses are free again,
        its last change time stays (its change period keeps running)."""

    @abc.abstractmethod
    async def invite(self, parent_id: str, member_id: str, *, at: datetime) -> None:
        """Record (or renew) the parent's invitation; nothing about the member changes."""

    @abc.abstractmethod
    async def invitations(self, member_id: str) -> Sequence[Invitation]:
        """The member's invitations, oldest first, expired ones included."""

    @abc.abstractmethod
    async def drop_invitation(self, parent_id: str, member_id: str) -> bool:
        """Forget the invitation (declined); False when there was none."""

    # orders placed through the gateway (for modify conversion and ownership)
    @abc.abstractmethod
    async def remember_order(self, order: KnownOrder) -> None: ...

    @abc.abstractmethod
    async def known_order(self, order_id: str) -> KnownOrder | None: ...

    # idempotency (SPEC §10)
    @abc.abstractmethod
    async def begin_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Durably claim (user_id, key): None when claimed now, else the existing record."""

    @abc.abstractmethod
    async def peek_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        """The record of (user_id, key), claiming nothing (explain, SPEC §12)."""

    @abc.abstractmethod
    async def finish_idempotent(self, record: IdempotencyRecord) -> None: ...

    @abc.abstractmethod
    async def release_idempotent(self, record: IdempotencyRecord) -> None:
        """Drop a claim whose request was refused before it went upstream."""

    # audit (SPEC §12)
    @abc.abstractmethod
    def audit(self, entry: AuditEntry) -> None:
        """Buffer a decision for the store's flusher (close() flushes what is left).

        Never waits and never fails: a decision stands whether or not its record is written
        yet, and a write that fails keeps the record for the next flush."""

    @abc.abstractmethod
    async def audit_query(self, *, user_id: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        """The newest decisions first."""
