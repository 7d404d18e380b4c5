"""Redis store: several gateway workers and instances share one state (SPEC §11).

``store.url = "redis://host:port/db?prefix=og:"`` (``rediss://`` for TLS; any other query
option is redis-py's, e.g. ``socket_timeout``).  Needs Redis >= 6.2, standalone or one primary
(the scripts follow references between keys, which a Cluster cannot route), with
``maxmemory-policy noeviction``: an evicted epoch counter could let a stale snapshot pass.

Every read-decide-write is one Lua script (beside its role module), so it is atomic across
instances.  Admission costs one round trip: snapshots (credential, account, effective
registration, slot holders) are cached in-process and proved current by per-account *epoch*
counters.  Every write that invalidates a snapshot (a login taking a slot, a revocation, an IP
change, joining or leaving a family, a token's allowlist, a stored upstream credential)
increments the affected accounts' epochs in the same script.  ``admit`` is one EVALSHA that
compares the snapshot's epochs and, only if they still hold, takes a slot in the account's
rolling-window ZSET; otherwise it raises StaleSnapshot and the caller re-reads.  So once a
PUT /v2/user/ip has answered, no instance admits an order on a session it revoked.
``verify`` (read routes) is one MGET of the epochs.

Durability is the operator's Redis configuration (AOF ``appendfsync everysec`` or ``always``
for idempotency claims and the registry to survive a Redis restart); the CI Redis keeps
nothing on disk.  Every Redis error (connection, timeout, a script error) becomes
StoreUnavailable at one boundary, ``_redis``: order routes then fail closed with 503.

Keys (``P`` is the prefix): ``account:<user>`` hash (``upstream_auth:<dialect>`` fields hold
the stored upstream credentials as JSON, ``broker_session:<dialect>`` the relayed logins'),
``accounts`` set, ``members:<parent>`` set, ``app:<api_key>`` hash, ``cred:<token hash>``
hash and ``sid:<session>`` -> token hash
(both expire a day after the credential does), ``sessions:<user>`` set, ``slots:<user>`` hash,
``reg:<user>`` hash, ``ip:<canonical ip>`` set of the accounts holding it, ``epoch:<user>``,
``rate:<user>`` ZSET, ``apitoken:<lookup id>`` hash, ``apitokens:<user>`` ZSET (by creation),
``analytics:<user>`` -> session id, ``invites:<member>`` hash (parent -> invited at, 8 days),
``order:<id>`` (7 days), ``idem:<[user, key]>`` hash (1 day), ``audit`` and
``audit-user:<user>`` capped lists, newest first.
"""

from __future__ import annotations

from typing import Any

from .accounts import RedisAccounts
from .admission import RedisAdmission
from .audit import RedisAudit
from .broker import RedisBroker
from .client import connect
from .credentials import RedisCredentials
from .idempotency import RedisIdempotency
from .orders import RedisOrders
from .registry import RedisRegistry
from .tokens import RedisTokens

__all__ = ["RedisStore"]


class RedisStore(
    RedisAccounts,
    RedisBroker,
    RedisCredentials,
    RedisTokens,
    RedisRegistry,
    RedisAdmission,
    RedisOrders,
    RedisIdempotency,
    RedisAudit,
):
    """Every role over one client."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``options`` go to redis-py (a test passes ``connection_class``)."""
        client, prefix = connect(url, **options)
        return cls(client, prefix=prefix)
