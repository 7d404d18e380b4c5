"""What the paper broker remembers as a broker (SPEC §14): its accounts, their registered
static IPs and login secrets, and the sessions it issued, each bound to its address."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass(slots=True)
class BrokerAccount:
    ucc: str
    static_ips: frozenset[str]
    name: str = ""
    mobile_number: str | None = None
    totp: str | None = None
    mpin: str | None = None
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class BrokerSession:
    ucc: str
    dialect: str
    kind: str  # "view" (kotak's first step), "trade", or "access" (upstox)
    ip: str  # the address the session was created from
    sid: str = ""


@dataclass(slots=True)
class Brokerage:
    accounts: dict[str, BrokerAccount] = field(default_factory=dict)
    sessions: dict[str, BrokerSession] = field(default_factory=dict)  # token -> session
    codes: dict[str, str] = field(default_factory=dict)  # upstox auth code -> ucc

    def open(self, session: BrokerSession) -> str:
        token = secrets.token_urlsafe(24)
        self.sessions[token] = session
        return token
