"""The Idempotency role: Idempotency-Key claims (SPEC §10).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

from gateway.stores.base import (
    IdempotencyRecord,
    Store,
)

from .values import (
    idem,
)

# idempotency -----------------------------------------------------------------------------


async def test_begin_claims_once_then_returns_the_claim(store: Store) -> None:
    assert await store.begin_idempotent(idem("u1", "k1", "h1")) is None
    existing = await store.begin_idempotent(idem("u1", "k1", "h2"))
    assert existing == IdempotencyRecord(user_id="u1", key="k1", body_hash="h1", status=None)


async def test_keys_are_per_account(store: Store) -> None:
    assert await store.begin_idempotent(idem("u1", "k1")) is None
    assert await store.begin_idempotent(idem("u2", "k1")) is None


async def test_finished_record_is_returned_to_a_repeat(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1", "h1"))
    done = IdempotencyRecord(
        user_id="u1",
        key="k1",
        body_hash="h1",
        status=200,
        headers={"Content-Type": "application/json", "X-Gateway-LTP": "101.5"},
        body=b'{"status":"success","data":{"order_id":"o-1"}}\x00\xff',
    )
    await store.finish_idempotent(done)
    assert await store.begin_idempotent(idem("u1", "k1", "h1")) == done


async def test_release_drops_an_unfinished_claim(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1"))
    await store.release_idempotent(idem("u1", "k1"))
    assert await store.begin_idempotent(idem("u1", "k1", "h2")) is None


async def test_release_keeps_a_finished_record(store: Store) -> None:
    await store.begin_idempotent(idem("u1", "k1"))
    done = IdempotencyRecord(user_id="u1", key="k1", body_hash="h1", status=201, body=b"{}")
    await store.finish_idempotent(done)
    await store.release_idempotent(idem("u1", "k1"))
    assert await store.begin_idempotent(idem("u1", "k1")) == done


async def test_peek_reads_a_record_and_claims_nothing(store: Store) -> None:
    assert await store.peek_idempotent("u1", "k1") is None
    assert await store.begin_idempotent(idem("u1", "k1", "h1")) is None  # the peek claimed nothing
    assert await store.peek_idempotent("u1", "k1") == IdempotencyRecord(
        user_id="u1", key="k1", body_hash="h1", status=None
    )
    done = IdempotencyRecord(
        user_id="u1", key="k1", body_hash="h1", status=201, headers={"A": "b"}, body=b"x\x00"
    )
    await store.finish_idempotent(done)
    assert await store.peek_idempotent("u1", "k1") == done
    assert await store.peek_idempotent("u2", "k1") is None
