"""Session lifetime and order admission (SPEC §5 steps 1-4, §9).

- A session ends at the daily logout time (``rules.session_logout``, default 03:30 in
  ``rules.timezone``; Upstox tokens likewise expire at 03:30 IST the next day), on logout,
  revocation or an IP change (the gateway marks those ``revoked``).
- An order route admits a request only when, in this order:
  1. the credential is live (401), and is not a read-only analytics token;
  2. the request IP is one of the account's effective registered IPs (403, Upstox UDAPI1154
     "Access to this API is blocked due to static IP restrictions");
  3. the session was created from that same IP (403): the SEBI framework binds a session to
     the static IP it was created from;
  4. the session holds that IP's order slot: the newest session created from an IP takes its
     slot, older sessions from it lose order rights (403).
- A console login (the web console, issue 14) never takes an order slot, whatever IP it comes
  from: a trader opening the console from a laptop must not log out the strategy on the VPS.
- An API token (Paradex model) is not an IP-bound session: its CIDR allowlist applies on every
  route, and on order routes the static IP rule (step 2) applies as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from rules.decisions import Reason, Refused
from rules.ip import canonical, in_networks
from rules.registry import Registration
from rules.types import CredentialKind, IPAddress, IPNetwork

__all__ = [
    "STATIC_IP_BLOCKED",
    "Credential",
    "admit_order",
    "check_allowlist",
    "check_live",
    "session_expiry",
    "slot_for",
]

# Upstox UDAPI1154's own wording; clients match on it.
STATIC_IP_BLOCKED = "Access to this API is blocked due to static IP restrictions"


@dataclass(frozen=True, slots=True)
class Credential:
    session_id: str
    user_id: str
    kind: CredentialKind
    created_ip: IPAddress
    created_at: datetime
    expires_at: datetime
    slot: str | None = None  # "primary" / "secondary" slot taken at creation
    allowed_cidrs: tuple[IPNetwork, ...] = ()
    revoked: bool = False


def session_expiry(created_at: datetime, *, logout: time, tz: tzinfo) -> datetime:
    """The first daily logout instant strictly after ``created_at``, aware in ``tz``."""
    local = created_at.astimezone(tz)
    expiry = datetime.combine(local.date(), logout, tzinfo=tz)
    if expiry <= created_at:
        expiry = datetime.combine(local.date() + timedelta(days=1), logout, tzinfo=tz)
    return expiry


def slot_for(
    created_ip: IPAddress, registration: Registration, *, console: bool = False
) -> str | None:
    """The order slot a new login takes: its IP's, unless it is the console's (none)."""
    return None if console else registration.slot_of(created_ip)


def check_live(cred: Credential | None, *, now: datetime) -> Credential:
    if cred is None:
        raise Refused(Reason.INVALID_TOKEN, "missing or unknown access token; log in again")
    if cred.revoked:
        raise Refused(
            Reason.INVALID_TOKEN,
            "this token was invalidated (logout, revocation or an IP change); log in again",
        )
    if now >= cred.expires_at:
        raise Refused(
            Reason.INVALID_TOKEN,
            f"this token expired at {cred.expires_at.isoformat(sep=' ')}; log in again",
        )
    return cred


def check_allowlist(cred: Credential, client_ip: IPAddress) -> None:
    if cred.allowed_cidrs and not in_networks(client_ip, cred.allowed_cidrs):
        raise Refused(
            Reason.CIDR_NOT_ALLOWED,
            f"requests from {canonical(client_ip)} are outside this API token's allowed_cidrs",
        )


def admit_order(
    cred: Credential | None,
    *,
    now: datetime,
    client_ip: IPAddress,
    registration: Registration,
    slot_holder: str | None,
) -> Credential:
    """SPEC §5 steps 1-4; ``registration`` is the effective one (own, or the family parent's)."""
    cred = check_live(cred, now=now)
    if cred.kind is CredentialKind.ANALYTICS:
        raise Refused(
            Reason.READ_ONLY_TOKEN,
            "an analytics token is read-only and cannot place, modify or cancel orders",
        )
    client_ip = canonical(client_ip)
    if cred.kind is CredentialKind.API_TOKEN:
        check_allowlist(cred, client_ip)
    registered = ", ".join(str(ip) for ip in registration.ordered_ips) or "none"
    if client_ip not in registration.ips:
        # The address the gateway saw is what an operator needs: behind NAT or a proxy it is
        # rarely the one the client believes it has.
        raise Refused(
            Reason.IP_NOT_REGISTERED,
            f"{STATIC_IP_BLOCKED}: the order came from {client_ip}, which is not a registered "
            f"IP of this account; registered IPs: {registered}",
        )
    if cred.kind is CredentialKind.API_TOKEN:
        return cred
    if canonical(cred.created_ip) != client_ip:
        raise Refused(
            Reason.SESSION_IP_MISMATCH,
            f"{STATIC_IP_BLOCKED}: this session was created from {canonical(cred.created_ip)} "
            f"but the order came from {client_ip}; registered IPs: {registered}. "
            "Log in again from the IP you trade from.",
        )
    if cred.slot is None:
        raise Refused(
            Reason.SLOT_TAKEN,
            "this session holds no order slot: it was created by the console, or from an"
            " address that was not registered then; log in again from the IP you trade from",
        )
    if slot_holder != cred.session_id:
        raise Refused(
            Reason.SLOT_TAKEN,
            f"a newer session created from {client_ip} holds this IP's order slot; "
            "use it or log in again",
        )
    return cred
