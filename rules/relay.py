"""The login relay's decisions (SPEC §14): whose broker session a relayed login is, and
whether a kept broker session still serves.

A broker session was born on facts: the account's egress address (Kotak binds its session to
the address it was created from) and its registered IPs at the time.  It ends with the
gateway's sessions at the daily logout, and when either fact moves: an IP change ends the
gateway's sessions (SPEC §4), and a session created on another egress address would be
refused by the broker anyway (Kotak ``1037``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules.decisions import Reason, Refused


@dataclass(frozen=True, slots=True)
class Candidate:
    """An account as the relay matches it: its user id and the broker's client code for it."""

    user_id: str
    broker_user_id: str | None = None


def relay_account(client_code: object, accounts: Iterable[Candidate]) -> str:
    """The user id of the account the broker's answer names.  An account whose
    ``broker_user_id`` is the client code wins over one whose ``user_id`` merely equals it:
    the operator said so explicitly.  No account: 403, and the caller keeps nothing."""
    if not isinstance(client_code, str) or not client_code:
        raise Refused(Reason.FORBIDDEN, "the broker's answer names no client code")
    by_user_id: str | None = None
    for account in accounts:
        if account.broker_user_id == client_code:
            return account.user_id
        if account.user_id == client_code and account.broker_user_id is None:
            by_user_id = account.user_id
    if by_user_id is None:
        raise Refused(
            Reason.FORBIDDEN,
            f"no account here is the broker's client {client_code}: set its broker_user_id",
        )
    return by_user_id


def broker_session_serves(
    *,
    expires_at: datetime,
    registration_version: int,
    egress_ip: str | None,
    now: datetime,
    current_version: int,
    current_egress: str | None,
) -> bool:
    """True while a kept broker session may be sent on the account's behalf."""
    return (
        now < expires_at and registration_version == current_version and egress_ip == current_egress
    )
