"""Ids the gateway makes for its own records (request ids, audit ids): 32 hex digits, a random
per-process prefix and a counter.

Unique across workers, instances and restarts (64 random bits a process), and cheap: a uuid4
per record reads ``os.urandom`` each time, a system call on every order (~6 us per order in a
profile of the order path).
"""

from __future__ import annotations

import itertools
import secrets

__all__ = ["new_id"]

_PREFIX = secrets.token_hex(8)
_SEQ = itertools.count(1)


def new_id() -> str:
    return f"{_PREFIX}{next(_SEQ):016x}"
