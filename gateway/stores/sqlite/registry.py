"""The static-IP registry and families (the Registry role), SPEC §4, §9.

An IP change is written only at the version it was decided on and only if no account outside
the family holds its addresses; a join only if the facts ``rules.family`` decided it on
still hold.  Both inside one ``BEGIN IMMEDIATE``, answering a status.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.family import JoinFacts
from rules.ip import canonical
from rules.registry import IpCommit, IpCommitted, Registration

from ..base import Account, Commit
from . import schema
from .core import SQLiteCore


class SQLiteRegistry(SQLiteCore):
    async def get_registration(self, user_id: str) -> Registration:
        return await self._run(schema.read_registration, self._conn, user_id)

    async def apply_ip_change(
        self, user_id: str, new: Registration, *, expected_version: int
    ) -> IpCommitted:
        def write() -> tuple[IpCommitted, list[str]]:
            with self._tx() as db:
                current = schema.read_registration(self._conn, user_id)
                if current.version != expected_version:
                    return IpCommitted(IpCommit.VERSION_MOVED), []
                members = [
                    row[0]
                    for row in db.execute(
                        "SELECT user_id FROM accounts WHERE parent_id = ?", (user_id,)
                    )
                ]
                family = [user_id, *members]
                for ip in sorted(str(ip) for ip in new.ips):
                    marks = ",".join("?" * len(family))
                    # only "?" placeholders are formatted into the statement
                    holder = db.execute(
                        "SELECT user_id FROM registrations"  # noqa: S608
                        " WHERE (primary_ip = ? OR secondary_ip = ?)"
                        f" AND user_id NOT IN ({marks}) LIMIT 1",
                        (ip, ip, *family),
                    ).fetchone()
                    if holder is not None:
                        return IpCommitted(IpCommit.TAKEN, ip), []
                db.execute(
                    "INSERT INTO registrations (user_id, primary_ip, secondary_ip,"
                    " primary_updated_at, secondary_updated_at, changed_at, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                    " primary_ip = excluded.primary_ip, secondary_ip = excluded.secondary_ip,"
                    " primary_updated_at = excluded.primary_updated_at,"
                    " secondary_updated_at = excluded.secondary_updated_at,"
                    " changed_at = excluded.changed_at, version = excluded.version",
                    (
                        user_id,
                        # Stored canonical, so uniqueness never compares raw strings (SPEC §4).
                        None if new.primary is None else str(canonical(new.primary)),
                        None if new.secondary is None else str(canonical(new.secondary)),
                        schema.ts(new.primary_updated_at),
                        schema.ts(new.secondary_updated_at),
                        schema.ts(new.changed_at),
                        new.version,
                    ),
                )
                schema.revoke_accounts(db, family)
                return IpCommitted(IpCommit.APPLIED), family

        committed, family = await self._run(write)
        self._forget_accounts(set(family))
        return committed

    async def family_members(self, parent_id: str) -> Sequence[Account]:
        rows = await self._all(
            f"SELECT {schema.ACCOUNT_COLUMNS} FROM accounts"  # noqa: S608
            " WHERE parent_id = ? ORDER BY user_id",
            (parent_id,),
        )
        return [schema.account_row(row) for row in rows]

    async def join_facts(self, parent_id: str, member_id: str) -> JoinFacts:
        return await self._run(schema.read_join_facts, self._conn, parent_id, member_id)

    async def add_family_member(
        self, parent_id: str, member_id: str, *, expected: JoinFacts
    ) -> Commit:
        def write() -> Commit:
            with self._tx() as db:
                if schema.read_join_facts(db, parent_id, member_id) != expected:
                    return Commit.STALE
                db.execute(
                    "UPDATE accounts SET parent_id = ? WHERE user_id = ?", (parent_id, member_id)
                )
                # The member trades from the parent's IPs now; its own registration would
                # otherwise keep holding addresses outside the family once it leaves.
                db.execute("DELETE FROM registrations WHERE user_id = ?", (member_id,))
                # The member now trades from the parent's IPs: its old sessions were bound
                # to its own registration, so they end here.
                schema.revoke_accounts(db, [member_id])
                return Commit.DONE

        done = await self._run(write)
        self._forget_accounts({member_id})
        return done

    async def remove_family_member(self, parent_id: str, member_id: str) -> bool:
        def write() -> bool:
            with self._tx() as db:
                cur = db.execute(
                    "UPDATE accounts SET parent_id = NULL WHERE user_id = ? AND parent_id = ?",
                    (member_id, parent_id),
                )
                if cur.rowcount:
                    schema.revoke_accounts(db, [member_id])
                return cur.rowcount > 0

        removed = await self._run(write)
        self._forget_accounts({member_id})
        return removed
