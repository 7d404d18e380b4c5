"""Ids the gateway makes for its records: 32 hex digits, never twice in a process."""

from __future__ import annotations

import re
import subprocess
import sys

from gateway.ids import new_id


def test_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_two_processes_make_different_ids() -> None:
    code = "from gateway.ids import new_id; print(new_id())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(runs) == 2
