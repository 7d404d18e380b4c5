"""``python -m benchmarks.profile``: where a gateway candidate's CPU per order goes, by py-spy.

For each candidate (default ``gateway`` and ``gateway-redis``), started fresh as ``make bench``
starts it: warm up, then run the closed loop for ``--duration`` s while ``py-spy record
--nonblocking -f raw`` samples the process under test (and its workers), and read the CPU of
every process of the candidate (the Redis server's too) from schedstat. It prints self time per
function and per package in µs per order (samples × sample period / orders), and with two
candidates the difference, largest first: where the second one's extra CPU goes.

Self time only: coroutine stacks come out cut at the awaiting frame, so inclusive time
undercounts (README, "Where an order's CPU goes"). py-spy stops the process for no sample
(``--nonblocking``) and runs on the load core, so it costs the measured core nothing; its
samples cover Python and native frames of Python threads, not the kernel's socket work, so
their sum falls short of the schedstat figure printed beside it.

Needs ``py-spy`` (``pip install py-spy``) and permission to read the gateway's memory (root, or
``kernel.yama.ptrace_scope = 0``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis

from benchmarks import candidates, cpu, gateways

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/([^/]+)")


def package(path: str) -> str:
    """A frame's file as the package it belongs to: ``redis``, ``aiohttp``, ``gateway/pipeline``."""
    site = _SITE.search(path)
    if site:
        return site.group(1).split(".")[0]
    for root in ("gateway", "rules", "benchmarks"):
        if f"/{root}/" in path or path.startswith(f"{root}/"):
            tail = path.rsplit(f"{root}/", 1)[1]
            return f"{root}/{tail.removesuffix('.py')}"
    if "/lib/python" in path:
        return "stdlib"
    return path or "native"


def self_samples(raw: str) -> tuple[Counter[str], Counter[str], int]:
    """Leaf-frame sample counts by function and by package from py-spy's raw (collapsed)
    output, and the total."""
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        func, path = (match["func"], match["file"]) if match else (leaf, "")
        pkg = package(path)
        functions[f"{func} [{pkg}]"] += int(count)
        packages[pkg] += int(count)
        total += int(count)
    return functions, packages, total


def commandstats(store_url: str | None) -> Counter[str]:
    """Calls per Redis command so far (``INFO commandstats``), the server's socket reads as
    ``(reads)`` and the µs it spent executing commands (scripts' inner calls counted twice)
    as ``(command µs)``; empty without a Redis store."""
    if store_url is None:
        return Counter()
    client = redis.Redis.from_url(store_url.split("?", 1)[0])
    try:
        stats = client.info("commandstats")
        reads = client.info("stats")["total_reads_processed"]
    finally:
        client.close()
    calls = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})
    calls["(reads)"] = int(reads)
    calls["(command µs)"] = sum(int(v["usec"]) for v in stats.values())
    return calls


def _load(
    ep: candidates.Endpoint, seconds: float, connections: int, workdir: Path, cpu_id: int | None
) -> int:
    cmd = [sys.executable, "-m", "benchmarks.load", "closed", "--host", ep.host]
    cmd += ["--port", str(ep.port), "--duration", str(seconds), "--connections", str(connections)]
    for name, value in ep.headers:
        cmd += ["--header", f"{name}: {value}"]
    if ep.identities:
        identities = workdir / "identities.json"
        identities.write_text(json.dumps(ep.identities))
        cmd += ["--identities", str(identities)]
    cmd = candidates.pinned(cmd, cpu_id)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} error responses: {result['statuses']}")
    requests: int = result["requests"]
    return requests


def profile(name: str, args: argparse.Namespace, workroot: Path) -> dict[str, object]:
    workdir = workroot / name
    workdir.mkdir()
    placement = candidates.Placement.detect()
    if args.redis_core == "load":
        placement = dataclasses.replace(placement, store=placement.load)
    src = args.baseline_src if name == gateways.BASELINE else args.gateway_src
    with candidates.running(name, workdir, placement, "auto", src, args.accounts) as ep:
        _load(ep, args.warmup, args.connections, workdir, placement.load)
        out = workdir / "pyspy.txt"
        spy = [args.py_spy, "record", "--nonblocking", "--subprocesses", "-f", "raw"]
        spy += ["-r", str(args.rate), "-o", str(out), "--pid", str(ep.pid)]
        spy += ["--gil"] if args.gil else []
        sampler = subprocess.Popen(
            candidates.pinned(spy, placement.load),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # py-spy attaches before the load starts
        store_url = ep.facts.get("store_url")
        calls0 = commandstats(store_url)
        gw0 = cpu.cpu_seconds(ep.pid)
        store0 = sum(cpu.cpu_seconds(p) for p in ep.system)
        orders = _load(ep, args.duration, args.connections, workdir, placement.load)
        gw_s = cpu.cpu_seconds(ep.pid) - gw0
        store_s = sum(cpu.cpu_seconds(p) for p in ep.system) - store0
        calls = commandstats(store_url) - calls0
        sampler.send_signal(signal.SIGINT)
        sampler.wait(30)
    functions, packages, total = self_samples(out.read_text())
    # py-spy kept sampling for the 0.5 s before the load and until SIGINT; idle frames are
    # not recorded, so those moments add next to nothing.
    per_order = 1e6 / args.rate / max(1, orders)
    return {
        "orders": orders,
        "gateway_us": gw_s * 1e6 / max(1, orders),
        "store_us": store_s * 1e6 / max(1, orders),
        "sampled_us": total * per_order,
        "redis_calls": {k: v / max(1, orders) for k, v in calls.items()},
        "functions": {k: v * per_order for k, v in functions.items()},
        "packages": {k: v * per_order for k, v in packages.items()},
    }


def _table(title: str, rows: dict[str, float], top: int) -> list[str]:
    lines = [f"\n{title}"]
    for key, value in sorted(rows.items(), key=lambda kv: -abs(kv[1]))[:top]:
        lines.append(f"  {value:8.2f}  {key}")
    return lines


def report(results: dict[str, dict[str, object]], top: int) -> str:
    lines: list[str] = []
    for name, r in results.items():
        lines.append(
            f"{name}: {r['orders']} orders; CPU per order {r['gateway_us']:.1f} µs gateway"
            f" + {r['store_us']:.1f} µs Redis server; py-spy saw {r['sampled_us']:.1f} µs"
        )
        calls = r["redis_calls"]
        assert isinstance(calls, dict)
        if calls:
            lines.append(
                "  Redis commands (and the server's socket reads) per order: "
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))
            )
        for kind in ("packages", "functions"):
            rows = r[kind]
            assert isinstance(rows, dict)
            lines += _table(f"  self µs per order by {kind[:-1]}:", rows, top)
        lines.append("")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        for kind in ("packages", "functions"):
            left, right = ra[kind], rb[kind]
            assert isinstance(left, dict)
            assert isinstance(right, dict)
            diff = {k: right.get(k, 0.0) - left.get(k, 0.0) for k in {*left, *right}}
            lines += _table(f"{b} minus {a}, self µs per order by {kind[:-1]}:", diff, top)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    p.add_argument("--candidates", default="gateway,gateway-redis")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--accounts", type=int, default=gateways.DEFAULT_ACCOUNTS)
    p.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--redis-core",
        choices=("dut", "load"),
        default="dut",
        help="the Redis server's core: with the gateway (as make bench runs it) or the load's",
    )
    p.add_argument(
        "--gil", action="store_true", help="only samples of a thread holding the GIL (py-spy --gil)"
    )
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    p.add_argument("--gateway-ref", help="profile this commit, not the work tree")
    p.add_argument(
        "--baseline-ref",
        help=f"a commit profiled as candidate {gateways.BASELINE} (a before/after in one run)",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    if not shutil.which(args.py_spy):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="gw-profile-") as tmp:
        args.baseline_src = args.gateway_src = None
        if args.gateway_ref:
            args.gateway_src = Path(tmp) / "src"
            candidates.snapshot(args.gateway_ref, args.gateway_src)
        if args.baseline_ref:
            args.baseline_src = Path(tmp) / "baseline"
            candidates.snapshot(args.baseline_ref, args.baseline_src)
        results = {name: profile(name, args, Path(tmp)) for name in names}
    sys.stdout.write(report(results, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
