"""The SQLite store's schema, migrations and row mapping: plain functions of a connection,
called on the store's one database thread."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from rules.family import JoinFacts
from rules.registry import Registration
from rules.sessions import Credential
from rules.types import CredentialKind, IPAddress, IPNetwork

from ..base import Account, ApiToken, BrokerSession

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    user_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,
    parent_id TEXT REFERENCES accounts(user_id), algo_id TEXT,
    upstream_auth TEXT NOT NULL DEFAULT '{}', algo_name TEXT, egress_ip TEXT,
    broker_user_id TEXT, broker_sessions TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS apps (
    api_key TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES accounts(user_id),
    secret_hash TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    session_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES accounts(user_id), kind TEXT NOT NULL,
    created_ip TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    slot TEXT, allowed_cidrs TEXT NOT NULL DEFAULT '[]', revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS credentials_user ON credentials(user_id);
CREATE TABLE IF NOT EXISTS slots (
    user_id TEXT NOT NULL, slot TEXT NOT NULL, session_id TEXT NOT NULL,
    PRIMARY KEY (user_id, slot)
);
CREATE TABLE IF NOT EXISTS registrations (
    user_id TEXT PRIMARY KEY REFERENCES accounts(user_id),
    primary_ip TEXT, secondary_ip TEXT, primary_updated_at TEXT, secondary_updated_at TEXT,
    changed_at TEXT, version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, instrument_key TEXT NOT NULL,
    side TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    user_id TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER,
    headers TEXT NOT NULL DEFAULT '{}', body BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (user_id, key)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user_id TEXT, record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user_id, id);
CREATE TABLE IF NOT EXISTS api_tokens (
    lookup_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE REFERENCES credentials(session_id),
    user_id TEXT NOT NULL REFERENCES accounts(user_id), name TEXT NOT NULL, kind TEXT NOT NULL,
    created_at TEXT NOT NULL, last_updated_at TEXT NOT NULL, revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens(user_id);
CREATE TABLE IF NOT EXISTS invitations (
    member_id TEXT NOT NULL, parent_id TEXT NOT NULL REFERENCES accounts(user_id),
    invited_at TEXT NOT NULL, PRIMARY KEY (member_id, parent_id)
);
CREATE TABLE IF NOT EXISTS login_steps (
    key TEXT PRIMARY KEY, user_id TEXT NOT NULL, egress TEXT, expires_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS credentials_one_analytics ON credentials(user_id)
    WHERE kind = 'analytics' AND revoked = 0;
"""


def ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def at(value: str) -> datetime:
    parsed = dt(value)
    assert parsed is not None
    return parsed


def cidrs(nets: Sequence[IPNetwork]) -> str:
    return orjson.dumps([str(n) for n in nets]).decode()


def ip(value: str | None) -> IPAddress | None:
    return None if value is None else ipaddress.ip_address(value)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a database written by an older gateway up to this schema, keeping its rows."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(accounts)")}
    if "upstream_auth" not in columns:
        db.execute("ALTER TABLE accounts ADD COLUMN upstream_auth TEXT NOT NULL DEFAULT '{}'")
    if "algo_name" not in columns:
        db.execute("ALTER TABLE accounts ADD COLUMN algo_name TEXT")
    if "egress_ip" not in columns:
        db.execute("ALTER TABLE accounts ADD COLUMN egress_ip TEXT")
    if "broker_user_id" not in columns:
        db.execute("ALTER TABLE accounts ADD COLUMN broker_user_id TEXT")
    if "broker_sessions" not in columns:
        db.execute("ALTER TABLE accounts ADD COLUMN broker_sessions TEXT NOT NULL DEFAULT '{}'")


ACCOUNT_COLUMNS = (
    "user_id, name, created_at, parent_id, algo_id, upstream_auth, algo_name, egress_ip,"
    " broker_user_id, broker_sessions"
)


METADATA_SELECT = (
    "SELECT t.lookup_id, t.session_id, t.user_id, t.name, t.kind, c.allowed_cidrs,"
    " t.created_at, c.expires_at, t.last_updated_at, t.revoked_at, c.revoked"
    " FROM api_tokens t JOIN credentials c ON c.session_id = t.session_id"
)


def read_account(db: sqlite3.Connection, user_id: str) -> Account | None:
    row = db.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = ?",  # noqa: S608
        (user_id,),
    ).fetchone()
    return None if row is None else account_row(row)


def account_row(row: Sequence[Any]) -> Account:
    created = dt(row[2])
    assert created is not None
    return Account(
        user_id=row[0],
        name=row[1],
        created_at=created,
        parent_id=row[3],
        algo_id=row[4],
        upstream_auth=orjson.loads(row[5]),
        algo_name=row[6],
        egress_ip=row[7],
        broker_user_id=row[8],
        broker_sessions={
            dialect: BrokerSession.from_json(held) for dialect, held in orjson.loads(row[9]).items()
        },
    )


def broker_sessions_json(sessions: Mapping[str, BrokerSession]) -> str:
    return orjson.dumps({d: held.to_json() for d, held in sessions.items()}).decode()


def insert_credential(db: sqlite3.Connection, c: Credential, token_hash: str) -> None:
    db.execute(
        "INSERT INTO credentials (session_id, token_hash, user_id, kind, created_ip,"
        " created_at, expires_at, slot, allowed_cidrs, revoked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        (
            c.session_id,
            token_hash,
            c.user_id,
            c.kind.value,
            str(c.created_ip),
            ts(c.created_at),
            ts(c.expires_at),
            c.slot,
            cidrs(c.allowed_cidrs),
        ),
    )


def read_live_analytics(db: sqlite3.Connection, user_id: str) -> Credential | None:
    row = db.execute(
        "SELECT token_hash FROM credentials"
        " WHERE user_id = ? AND kind = 'analytics' AND revoked = 0",
        (user_id,),
    ).fetchone()
    return None if row is None else read_credential(db, row[0])


def read_join_facts(db: sqlite3.Connection, parent_id: str, member_id: str) -> JoinFacts:
    parent, member = read_account(db, parent_id), read_account(db, member_id)

    def members(user_id: str) -> int:
        (n,) = db.execute(
            "SELECT COUNT(*) FROM accounts WHERE parent_id = ?", (user_id,)
        ).fetchone()
        return int(n)

    invited = db.execute(
        "SELECT invited_at FROM invitations WHERE member_id = ? AND parent_id = ?",
        (member_id, parent_id),
    ).fetchone()
    return JoinFacts(
        parent_exists=parent is not None,
        parent_family=None if parent is None else parent.parent_id,
        member_exists=member is not None,
        member_family=None if member is None else member.parent_id,
        member_members=members(member_id),
        members=members(parent_id),
        invited_at=None if invited is None else dt(invited[0]),
    )


def read_credential(db: sqlite3.Connection, token_hash: str) -> Credential | None:
    row = db.execute(
        "SELECT session_id, user_id, kind, created_ip, created_at, expires_at, slot,"
        " allowed_cidrs, revoked FROM credentials WHERE token_hash = ?",
        (token_hash,),
    ).fetchone()
    if row is None:
        return None
    created, expires = dt(row[4]), dt(row[5])
    assert created is not None
    assert expires is not None
    return Credential(
        session_id=row[0],
        user_id=row[1],
        kind=CredentialKind(row[2]),
        created_ip=ipaddress.ip_address(row[3]),
        created_at=created,
        expires_at=expires,
        slot=row[6],
        allowed_cidrs=tuple(ipaddress.ip_network(n) for n in orjson.loads(row[7])),
        revoked=bool(row[8]),
    )


def read_registration(db: sqlite3.Connection, user_id: str) -> Registration:
    row = db.execute(
        "SELECT primary_ip, secondary_ip, primary_updated_at, secondary_updated_at,"
        " changed_at, version FROM registrations WHERE user_id = ?",
        (user_id,),
    ).fetchone()
    if row is None:
        return Registration()
    return Registration(
        primary=ip(row[0]),
        secondary=ip(row[1]),
        primary_updated_at=dt(row[2]),
        secondary_updated_at=dt(row[3]),
        changed_at=dt(row[4]),
        version=row[5],
    )


def read_slots(db: sqlite3.Connection, user_id: str) -> dict[str, str]:
    rows = db.execute("SELECT slot, session_id FROM slots WHERE user_id = ?", (user_id,)).fetchall()
    return {slot: session_id for slot, session_id in rows}


def revoke_accounts(db: sqlite3.Connection, user_ids: Sequence[str]) -> int:
    marks = ",".join("?" * len(user_ids))
    cur = db.execute(
        f"UPDATE credentials SET revoked = 1 WHERE revoked = 0 AND user_id IN ({marks})",  # noqa: S608
        tuple(user_ids),
    )
    db.execute(f"DELETE FROM slots WHERE user_id IN ({marks})", tuple(user_ids))  # noqa: S608
    return cur.rowcount


def token_row(row: Sequence[Any]) -> ApiToken:
    created, expiry, updated = dt(row[6]), dt(row[7]), dt(row[8])
    assert created is not None
    assert expiry is not None
    assert updated is not None
    return ApiToken(
        lookup_id=row[0],
        token_id=row[1],
        user_id=row[2],
        name=row[3],
        kind=row[4],
        allowed_cidrs=tuple(ipaddress.ip_network(n) for n in orjson.loads(row[5])),
        created_at=created,
        expiry_at=expiry,
        last_updated_at=updated,
        revoked_at=dt(row[9]),
    )


def read_token(
    db: sqlite3.Connection, user_id: str, lookup_id: str
) -> tuple[ApiToken, bool] | None:
    row = db.execute(
        METADATA_SELECT + " WHERE t.user_id = ? AND t.lookup_id = ?",
        (user_id, lookup_id),
    ).fetchone()
    return None if row is None else (token_row(row), bool(row[10]))
