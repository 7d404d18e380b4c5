"""API tokens (Paradex model) and the analytics token (Upstox model), SPEC §9 (the Tokens role).

Writes decided by ``rules.tokens`` are committed only on the facts they were decided on: an
allowlist only on a token that is still live, an analytics token only if the account's
unrevoked one is still the one the decision retires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from rules.sessions import Credential
from rules.types import CredentialKind, IPNetwork

from ..base import ApiToken, Commit
from . import schema
from .core import SQLiteCore


class SQLiteTokens(SQLiteCore):
    async def create_api_token(
        self, token: ApiToken, credential: Credential, token_hash: str
    ) -> ApiToken:
        def write() -> None:
            with self._tx() as db:
                schema.insert_credential(db, credential, token_hash)
                db.execute(
                    "INSERT INTO api_tokens (lookup_id, session_id, user_id, name, kind,"
                    " created_at, last_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        token.lookup_id,
                        credential.session_id,
                        token.user_id,
                        token.name,
                        token.kind,
                        schema.ts(token.created_at),
                        schema.ts(token.last_updated_at),
                    ),
                )

        await self._run(write)
        self._credentials[token_hash] = credential
        return token

    async def api_tokens(
        self, user_id: str, *, kind: str | None, with_invalid: bool, now: datetime
    ) -> Sequence[ApiToken]:
        def read() -> list[Any]:
            with self._tx() as db:
                db.execute(
                    "UPDATE api_tokens SET revoked_at = ?, last_updated_at = ?"
                    " WHERE user_id = ? AND revoked_at IS NULL AND session_id IN"
                    " (SELECT session_id FROM credentials WHERE user_id = ? AND revoked = 1)",
                    (schema.ts(now), schema.ts(now), user_id, user_id),
                )
                sql = schema.METADATA_SELECT + " WHERE t.user_id = ?"
                args: tuple[str, ...] = (user_id,)
                if kind is not None:
                    sql, args = sql + " AND t.kind = ?", (*args, kind)
                return db.execute(sql + " ORDER BY t.created_at, t.rowid", args).fetchall()

        tokens = [schema.token_row(row) for row in await self._run(read)]
        if with_invalid:
            return tokens
        return [t for t in tokens if t.live_at(now)]

    async def revoke_api_token(
        self, user_id: str, lookup_id: str, *, now: datetime
    ) -> ApiToken | None:
        def write() -> ApiToken | None:
            with self._tx() as db:
                found = schema.read_token(self._conn, user_id, lookup_id)
                if found is None:
                    return None
                token, _ = found
                db.execute(
                    "UPDATE credentials SET revoked = 1 WHERE session_id = ?", (token.token_id,)
                )
                if token.revoked_at is None:
                    db.execute(
                        "UPDATE api_tokens SET revoked_at = ?, last_updated_at = ?"
                        " WHERE lookup_id = ?",
                        (schema.ts(now), schema.ts(now), lookup_id),
                    )
                    return replace(token, revoked_at=now, last_updated_at=now)
                return token

        token = await self._run(write)
        if token is not None:
            self._forget_credentials(lambda c: c.session_id == token.token_id)
        return token

    async def replace_api_token_cidrs(
        self, user_id: str, lookup_id: str, cidrs: tuple[IPNetwork, ...], *, now: datetime
    ) -> ApiToken | None:
        def write() -> ApiToken | None:
            with self._tx() as db:
                found = schema.read_token(self._conn, user_id, lookup_id)
                if found is None:
                    return None
                token, revoked = found
                if revoked or not token.live_at(now):
                    return None
                db.execute(
                    "UPDATE credentials SET allowed_cidrs = ? WHERE session_id = ?",
                    (schema.cidrs(cidrs), token.token_id),
                )
                db.execute(
                    "UPDATE api_tokens SET last_updated_at = ? WHERE lookup_id = ?",
                    (schema.ts(now), lookup_id),
                )
                return replace(token, allowed_cidrs=cidrs, last_updated_at=now)

        token = await self._run(write)
        if token is not None:
            self._forget_credentials(lambda c: c.session_id == token.token_id)
        return token

    async def live_analytics_token(self, user_id: str) -> Credential | None:
        return await self._run(schema.read_live_analytics, self._conn, user_id)

    async def create_analytics_token(
        self, credential: Credential, token_hash: str, *, retire: str | None
    ) -> Commit:
        c = credential

        def write() -> Commit:
            with self._tx() as db:
                live = schema.read_live_analytics(db, c.user_id)
                if (None if live is None else live.session_id) != retire:
                    return Commit.STALE
                # Retired first: the unique index admits one unrevoked analytics credential.
                db.execute("UPDATE credentials SET revoked = 1 WHERE session_id = ?", (retire,))
                schema.insert_credential(db, c, token_hash)
                return Commit.DONE

        done = await self._run(write)
        if done is Commit.DONE:
            self._forget_credentials(
                lambda old: old.user_id == c.user_id and old.kind is CredentialKind.ANALYTICS
            )
            self._credentials[token_hash] = c
        return done

    async def revoke_analytics_token(self, user_id: str) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE credentials SET revoked = 1"
                " WHERE user_id = ? AND kind = 'analytics' AND revoked = 0",
                (user_id,),
            )
            return cur.rowcount > 0

        changed = await self._run(write)
        self._forget_credentials(
            lambda c: c.user_id == user_id and c.kind is CredentialKind.ANALYTICS
        )
        return changed
