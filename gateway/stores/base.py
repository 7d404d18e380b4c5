"""The store's values and errors: what the gateway keeps.  The operations, one small
interface per concern and ``Store`` their sum, are in ``roles``.

Two implementations pass the same contract tests (``tests/gateway/stores``): SQLite for one
process, Redis for several workers and instances (SPEC §11).

Admission must not cost a store round trip per check, so the order path reads one
:class:`Snapshot` (credential, account, effective registration, slot holders), which a store
caches in-process, and then makes one ``admit`` call (``roles.Admission``) that takes the
rate-limit slots.
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

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from rules.registry import Registration
from rules.sessions import Credential
from rules.types import IPNetwork

from .roles import Store as Store


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
class LoginStep:
    """A relayed broker login between its two steps (SPEC §14): whose it is and the address
    the first step left from, until ``expires_at``; the second step may reach any worker."""

    user_id: str
    egress: str | None
    expires_at: datetime


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
