"""Login sessions and the hot snapshot admission reads (the Credentials role)."""

from __future__ import annotations

from typing import cast

from rules.sessions import Credential

from ..base import Snapshot
from . import schema
from .core import UNCACHED, SQLiteCore


class SQLiteCredentials(SQLiteCore):
    async def create_credential(self, credential: Credential, token_hash: str) -> Credential:
        c = credential

        def write() -> None:
            with self._tx() as db:
                schema.insert_credential(db, c, token_hash)
                if c.slot is not None:
                    db.execute(
                        "INSERT INTO slots (user_id, slot, session_id) VALUES (?, ?, ?)"
                        " ON CONFLICT (user_id, slot)"
                        " DO UPDATE SET session_id = excluded.session_id",
                        (c.user_id, c.slot, c.session_id),
                    )

        await self._run(write)
        self._credentials[token_hash] = c
        self._slots.pop(c.user_id, None)
        return c

    async def snapshot(self, token_hash: str) -> Snapshot | None:
        cached = self._credentials.get(token_hash, UNCACHED)
        if cached is UNCACHED:
            credential = await self._run(schema.read_credential, self._conn, token_hash)
            self._credentials[token_hash] = credential
        else:
            credential = cast("Credential | None", cached)
        if credential is None:
            return None
        account = await self._account(credential.user_id)
        if account is None:
            return None
        owner = account.parent_id or account.user_id
        registration = self._registrations.get(owner)
        if registration is None:
            registration = await self._run(schema.read_registration, self._conn, owner)
            self._registrations[owner] = registration
        slots = self._slots.get(account.user_id)
        if slots is None:
            slots = await self._run(schema.read_slots, self._conn, account.user_id)
            self._slots[account.user_id] = slots
        egress = account.egress_ip
        if egress is None and account.parent_id is not None:
            parent = await self._account(account.parent_id)
            egress = None if parent is None else parent.egress_ip
        return Snapshot(credential, account, registration, slots, egress_ip=egress)

    async def revoke_credential(self, session_id: str) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "UPDATE credentials SET revoked = 1 WHERE session_id = ? AND revoked = 0",
                (session_id,),
            )
            return cur.rowcount > 0

        changed = await self._run(write)
        self._forget_credentials(lambda c: c.session_id == session_id)
        return changed

    async def sessions_of(self, user_id: str) -> tuple[list[Credential], dict[str, str]]:
        def read() -> tuple[list[Credential], dict[str, str]]:
            rows = self._conn.execute(
                "SELECT token_hash FROM credentials WHERE user_id = ? AND revoked = 0"
                " ORDER BY created_at",
                (user_id,),
            ).fetchall()
            found = (schema.read_credential(self._conn, th) for (th,) in rows)
            return [c for c in found if c is not None], schema.read_slots(self._conn, user_id)

        return await self._run(read)

    async def revoke_account(self, user_id: str) -> int:
        def write() -> int:
            with self._tx() as db:
                return schema.revoke_accounts(db, [user_id])

        count = await self._run(write)
        self._forget_accounts({user_id})
        return count

    async def verify(self, snapshot: Snapshot) -> None:
        """One process writes this database: a snapshot it serves is current."""
