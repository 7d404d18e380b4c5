"""The AuditLog role: decisions kept and queried (SPEC §12).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

from gateway.stores.base import (
    AuditEntry,
    Store,
)

# audit -----------------------------------------------------------------------------------


async def test_audit_query_is_newest_first_filtered_and_limited(store: Store) -> None:
    records = [
        {"at": f"2026-04-06 09:15:0{i}", "user_id": user, "decision": "admit", "n": i}
        for i, user in enumerate(["u1", "u2", "u1", "u1"])
    ]
    for record in records:
        store.audit(AuditEntry.of(record))

    assert list(await store.audit_query(user_id=None, limit=10)) == records[::-1]
    assert list(await store.audit_query(user_id="u1", limit=10)) == [
        records[3],
        records[2],
        records[0],
    ]
    assert list(await store.audit_query(user_id="u1", limit=2)) == [records[3], records[2]]
    assert list(await store.audit_query(user_id="u3", limit=10)) == []


async def test_audit_keeps_records_without_a_user(store: Store) -> None:
    record = {"at": "2026-04-06 09:15:00", "user_id": None, "decision": "refuse"}
    store.audit(AuditEntry.of(record))
    assert list(await store.audit_query(user_id=None, limit=1)) == [record]
