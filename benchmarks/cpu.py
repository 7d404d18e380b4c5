"""CPU time of a process tree: every thread's ``/proc/<pid>/task/<tid>/schedstat``.

Its first field is the time the thread spent on a CPU, in nanoseconds (the scheduler's
``sum_exec_runtime``, see the kernel's Documentation/scheduler/sched-stats.rst). The clock-tick
counters of ``/proc/<pid>/stat`` (utime, stime: 10 ms steps) are the fallback where schedstat
is missing; they also count threads that already exited, which schedstat does not, so a
process that starts and ends threads under load reads slightly low. The tree (a process and
its descendants) covers nginx's master and worker as well as a single-process gateway.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_PROC = Path("/proc")
_SCHEDSTAT = (_PROC / "self" / "schedstat").exists()
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is parenthesised and may contain spaces
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from every thread's ``children`` file."""
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int, limit: int = 256) -> list[int]:
    pids = [pid]
    i = 0
    while i < len(pids) and len(pids) < limit:
        pids += children(pids[i])
        i += 1
    return pids


def _schedstat_ns(pid: int) -> int | None:
    total = 0
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return None
    return total


def _ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    # after the name: state is fields[0], so utime and stime (fields 14, 15) are [11], [12]
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants, in seconds."""
    total = 0.0
    for member in tree(pid):
        ns = _schedstat_ns(member) if _SCHEDSTAT else None
        total += ns / 1e9 if ns is not None else _ticks(member) / TICKS_PER_S
    return total


def system_busy_s() -> float:
    """CPU time all CPUs spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S


def own_cpu_s() -> float:
    """This process's CPU and that of its children already waited for (the load generators)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
