"""wrk as the closed-loop load generator when it is installed: its Lua script and its result.

The script's ``done`` hook prints one ``WRKJSON`` line, read back into a ``LoadResult``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.load import LoadResult, Target

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def wrk_script(target: Target, path: Path) -> Path:
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    lines.append(f"wrk.body = {_lua_string(target.body.decode())}")
    headers = (*target.headers, ("Content-Type", "application/json"))
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers]
    path.write_text("\n".join(lines) + "\n" + _WRK_DONE)
    return path


def wrk_command(
    wrk: str, target: Target, script: Path, connections: int, duration: float
) -> list[str]:
    return [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://{target.host}:{target.port}{target.path}",
    ]


def parse_wrk(stdout: str) -> LoadResult:
    line = next(x for x in stdout.splitlines() if x.startswith("WRKJSON "))
    raw: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    elapsed = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        tool="wrk",
        mode="closed",
        requests=raw["requests"],
        errors=errors,
        statuses={},
        elapsed_s=elapsed,
        rps=raw["requests"] / elapsed,
        latency_us={k: float(raw[k]) for k in ("p50", "p90", "p99", "p999", "max", "mean")},
    )
