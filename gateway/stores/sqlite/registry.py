"""The static-IP registry and families (the Registry role), SPEC §4, §9.

An IP change is written only at the version it was decided on and only if no account outside
the family holds its addresses; a join only if the facts ``rules.family`` decided it on
still hold.  Both inside one ``BEGIN IMMEDIATE``, answering a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rules.family import JoinFacts
from rules.ip import canonical
from rules.registry import IpCommit, IpCommitted, Registration

from ..base import Account, Commit, Invitation
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
                db.execute(
                    "DELETE FROM invitations WHERE member_id = ? AND parent_id = ?",
                    (member_id, parent_id),
                )
                # Its own registration row stays: its addresses remain reserved to it while it
                # is in the family, and its change period keeps running (SPEC §9).  It trades
                # from the parent's IPs now, so the sessions bound to its own IPs end here.
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
                    # Its former addresses are free again once it left; its last change time
                    # stays, so it registers new ones only when its period allows (SPEC §9).
                    db.execute(
                        "UPDATE registrations SET primary_ip = NULL, secondary_ip = NULL,"
                        " primary_updated_at = NULL, secondary_updated_at = NULL,"
                        " version = version + 1 WHERE user_id = ?",
                        (member_id,),
                    )
                return cur.rowcount > 0

        removed = await self._run(write)
        self._forget_accounts({member_id})
        return removed

    async def invite(self, parent_id: str, member_id: str, *, at: datetime) -> None:
        await self._run(
            lambda: self._conn.execute(
                "INSERT INTO invitations (member_id, parent_id, invited_at) VALUES (?, ?, ?)"
                " ON CONFLICT (member_id, parent_id)"
                " DO UPDATE SET invited_at = excluded.invited_at",
                (member_id, parent_id, schema.ts(at)),
            )
        )

    async def invitations(self, member_id: str) -> Sequence[Invitation]:
        rows = await self._all(
            "SELECT i.parent_id, a.name, i.invited_at FROM invitations i"
            " JOIN accounts a ON a.user_id = i.parent_id WHERE i.member_id = ?"
            " ORDER BY i.invited_at, i.parent_id",
            (member_id,),
        )
        return [Invitation(parent, name, schema.at(when)) for parent, name, when in rows]

    async def drop_invitation(self, parent_id: str, member_id: str) -> bool:
        def write() -> bool:
            cur = self._conn.execute(
                "DELETE FROM invitations WHERE member_id = ? AND parent_id = ?",
                (member_id, parent_id),
            )
            return cur.rowcount > 0

        return await self._run(write)
