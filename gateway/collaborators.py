"""What the request path works with, named: the pipeline's collaborators (STYLE.md: explicit
collaborators, no services bag) and the two ways a request names its account upstream.

:class:`Collaborators` is the base of the pipeline's parts (``pricing.Pricing`` for SPEC §6,
``reads.Reads`` for read routes, ``pipeline.Pipeline`` for the order path): each holds the same
named collaborators and builds the upstream's view of an account the same way.
"""

from __future__ import annotations

from aiohttp import web

from .clock import Clock
from .config import RulesConfig, ServerConfig
from .dialects.base import Dialect
from .forwarding import Via, upstream_headers, via
from .instruments import InstrumentMaster
from .ltp import LtpBook
from .metrics import Metrics
from .stores.base import Snapshot
from .stores.roles import Admission, AuditLog, Credentials, Idempotency, OrderBook
from .upstream import Upstream


class Collaborators:
    """The rules and server config, the clock, five store roles, the upstream, instruments,
    LTPs and metrics.

    ``upstream`` is the one collaborator replaced after construction: the embedded paper
    broker's address is known only once it listens (``create_app``'s ``resources``).
    """

    def __init__(
        self,
        *,
        rules: RulesConfig,
        server: ServerConfig,
        shared_secret: str,
        clock: Clock,
        credentials: Credentials,
        admission: Admission,
        orders: OrderBook,
        idempotency: Idempotency,
        audit_log: AuditLog,
        upstream: Upstream,
        instruments: InstrumentMaster,
        ltp: LtpBook,
        metrics: Metrics,
    ) -> None:
        self.rules = rules
        self.server = server
        self.shared_secret = shared_secret
        self.clock = clock
        self.credentials = credentials
        self.admission = admission
        self.orders = orders
        self.idempotency = idempotency
        self.audit_log = audit_log
        self.upstream = upstream
        self.instruments = instruments
        self.ltp = ltp
        self.metrics = metrics

    def _identity(
        self,
        snapshot: Snapshot,
        dialect: Dialect,
        method: str,
        target: str,
        base: dict[str, str],
        *,
        body: bytes | None,
    ) -> dict[str, str]:
        return upstream_headers(
            snapshot,
            dialect.name,
            method,
            target,
            base,
            body=body,
            secret=self.shared_secret,
            clock=self.clock,
        )

    def _via(self, snapshot: Snapshot, dialect: Dialect) -> Via:
        """Where the account's requests go (SPEC §14): its egress address, its broker base."""
        return via(snapshot, dialect.name, self.clock.now())

    def _upstream_headers(
        self,
        request: web.Request,
        dialect: Dialect,
        snapshot: Snapshot,
        target: str,
        body: bytes | None,
    ) -> dict[str, str]:
        """The dialect's allowlisted client headers plus the account's identity, signed over
        the ``target`` and ``body`` that are sent (SPEC §10)."""
        allowed = dialect.forwarded_headers
        base = {name: value for name, value in request.headers.items() if name.lower() in allowed}
        return self._identity(snapshot, dialect, request.method, target, base, body=body)
