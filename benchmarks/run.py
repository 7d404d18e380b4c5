"""``python -m benchmarks.run``: gateway vs naive aiohttp proxy vs upstream alone, on loopback.

For each run, the candidates in a rotated order, and for each candidate both phases, each on
fresh processes: warm up, read the CPU of the process under test, measure, read it again.
- closed: ``--connections`` keep-alive connections for ``--duration`` s (wrk, else asyncio);
- open: ``--rate`` orders/s for ``--duration`` s, latency from the scheduled send time.
Writes ``<name>.json``, ``<name>.md`` and ``<name>.png`` into ``--out-dir``.
Exits 1 when a measurement failed or answered errors, never on a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import candidates, cpu, gateways, load, report, upstream, wrk

RESULTS = Path(__file__).resolve().parent / "results"
QUIET_WINDOW_S = 0.5
QUIET_CORES = 0.1  # other processes' CPU, in cores, under which a measurement may start
QUICK_ACCOUNTS = 20


def _options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--candidates", default=",".join(candidates.NAMES))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each measurement")
    p.add_argument("--rate", type=float, default=500.0, help="open-loop orders/s")
    p.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    p.add_argument("--max-conns", type=int, default=128, help="open-loop connection cap")
    p.add_argument("--phases", default="closed,open")
    p.add_argument(
        "--accounts",
        type=int,
        default=gateways.DEFAULT_ACCOUNTS,
        help="accounts of the -many shapes (each with its own static IP)",
    )
    p.add_argument("--closed-tool", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument("--upstream", choices=("auto", "nginx", "asyncio"), default="auto")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument("--out-dir", type=Path)
    p.add_argument("--name", help="result file stem (default latest; quick with --quick)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop starting new runs")
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument(
        "--gateway-ref",
        help="measure the gateway as committed at this git ref (e.g. HEAD), not the work tree",
    )
    p.add_argument(
        "--baseline-ref",
        help="also measure the SQLite gateway as committed at this git ref, as the candidate"
        " gateway-baseline, interleaved with the others (a before/after in one run)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait for other processes to go idle before each measurement",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 run, 1 s, 100 orders/s, 8 conns, 20 accounts",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 1.0, 0.3
        args.rate, args.connections, args.quiet_wait = 100.0, 8, 0.0
        args.accounts = min(args.accounts, QUICK_ACCOUNTS)
    args.name = args.name or ("quick" if args.quick else "latest")
    args.out_dir = args.out_dir or (RESULTS / "tmp" if args.quick else RESULTS)
    if min(args.runs, args.connections, args.accounts) < 1 or min(args.duration, args.rate) <= 0:
        p.error("--runs, --duration, --rate, --connections and --accounts must be positive")
    return args


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine() -> dict[str, Any]:
    model, mem_gib = platform.processor() or "unknown CPU", 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_gib = int(meminfo[0].split()[1]) / 2**20
    osname = platform.system()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')
    cores = os.cpu_count() or 0
    versions = {
        pkg: metadata.version(pkg) for pkg in ("aiohttp", "uvloop", "orjson") if _installed(pkg)
    }
    info: dict[str, Any] = {
        "cpu": model,
        "cores": cores,
        "memory_gib": round(mem_gib, 1),
        "os": osname,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": _version(["wrk", "-v"]) if shutil.which("wrk") else None,
        "nginx": _version(["nginx", "-v"]) if upstream.nginx_binary() else None,
        "git": _version(["git", "-C", str(RESULTS.parent.parent), "rev-parse", "--short", "HEAD"]),
    }
    info["summary"] = (
        f"{model}, {cores} cores, {info['memory_gib']:g} GiB, {osname}, Linux {info['kernel']}, "
        f"Python {info['python']}"
    )
    return info


def _installed(pkg: str) -> bool:
    try:
        metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return False
    return True


def _run_load(cmd: list[str], timeout: float) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {done.returncode}: {done.stderr[-1500:]}")
    return done.stdout


class Bench:
    def __init__(self, args: argparse.Namespace, workroot: Path) -> None:
        self.args = args
        self.workroot = workroot
        self.placement = (
            candidates.Placement(None, None) if args.no_pin else candidates.Placement.detect()
        )
        wrk_binary = shutil.which("wrk")
        if args.closed_tool == "wrk" and wrk_binary is None:
            raise SystemExit("--closed-tool wrk: wrk is not installed")
        self.wrk = wrk_binary if args.closed_tool in ("auto", "wrk") else None
        self.gateway_src: Path | None = None
        self.gateway_version = "work tree"
        if args.gateway_ref:
            self.gateway_src = workroot / "src"
            commit = candidates.snapshot(args.gateway_ref, self.gateway_src)
            self.gateway_version = f"commit {commit}"
        self.baseline_src: Path | None = None
        if args.baseline_ref:
            self.baseline_src = workroot / "baseline"
            commit = candidates.snapshot(args.baseline_ref, self.baseline_src)
            self.gateway_version += f"; {gateways.BASELINE} at commit {commit}"

    def _generate(
        self, phase: str, ep: candidates.Endpoint, duration: float, workdir: Path
    ) -> load.LoadResult:
        args = self.args
        target = load.Target(ep.host, ep.port, headers=ep.headers)
        timeout = duration + 30.0
        if phase == "closed" and self.wrk is not None and not ep.identities:
            script = wrk.wrk_script(target, workdir / "wrk.lua")
            cmd = wrk.wrk_command(self.wrk, target, script, args.connections, duration)
            return wrk.parse_wrk(_run_load(candidates.pinned(cmd, self.placement.load), timeout))
        cmd = [sys.executable, "-m", "benchmarks.load", phase, "--host", ep.host]
        cmd += ["--port", str(ep.port), "--duration", str(duration)]
        cmd += ["--rate", str(args.rate), "--max-conns", str(args.max_conns)]
        cmd += ["--connections", str(args.connections)]
        for name, value in ep.headers:
            cmd += ["--header", f"{name}: {value}"]
        if ep.identities:
            identities = workdir / "identities.json"
            identities.write_text(json.dumps(ep.identities))
            cmd += ["--identities", str(identities)]
        out = _run_load(candidates.pinned(cmd, self.placement.load), timeout)
        result: load.LoadResult = json.loads(out.strip().splitlines()[-1])
        return result

    def _wait_quiet(self) -> float:
        """Wait (bounded) until the rest of the machine is nearly idle; the busy cores left."""
        busy = 0.0
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            before = cpu.system_busy_s()
            time.sleep(QUIET_WINDOW_S)
            busy = (cpu.system_busy_s() - before) / QUIET_WINDOW_S
            if busy <= QUIET_CORES or time.monotonic() > deadline:
                return busy

    def measure(self, name: str, phase: str, run: int) -> dict[str, Any]:
        workdir = self.workroot / f"run{run}-{name}-{phase}"
        workdir.mkdir()
        with candidates.running(
            name,
            workdir,
            self.placement,
            self.args.upstream,
            self.baseline_src if name == gateways.BASELINE else self.gateway_src,
            self.args.accounts,
        ) as ep:
            idle_busy = self._wait_quiet()
            if self.args.warmup > 0:
                self._generate(phase, ep, self.args.warmup, workdir)
            ours = [cpu.own_cpu_s, *(lambda p=p: cpu.cpu_seconds(p) for p in ep.helpers)]
            cpu0, ours0 = cpu.cpu_seconds(ep.pid), sum(f() for f in ours)
            store0 = sum(cpu.cpu_seconds(p) for p in ep.system)
            busy0, wall0 = cpu.system_busy_s(), time.monotonic()
            result: dict[str, Any] = dict(self._generate(phase, ep, self.args.duration, workdir))
            cpu_s, wall = cpu.cpu_seconds(ep.pid) - cpu0, time.monotonic() - wall0
            store_s = sum(cpu.cpu_seconds(p) for p in ep.system) - store0
            others = (
                cpu.system_busy_s() - busy0 - cpu_s - store_s - (sum(f() for f in ours) - ours0)
            )
        requests = max(1, result["requests"])
        # Every process of the candidate: the process under test with its workers, and the
        # Redis server behind a gateway (its share is also reported on its own).
        result["process_cpu_s"] = cpu_s
        result["cpu_s"] = cpu_s + store_s
        result["cpu_util"] = (cpu_s + store_s) / wall
        result["cpu_us_per_req"] = (cpu_s + store_s) * 1e6 / requests
        if ep.system:
            result["store_cpu_s"] = store_s
            result["store_cpu_us_per_req"] = store_s * 1e6 / requests
        result["orders_per_core"] = requests / (cpu_s + store_s) if cpu_s + store_s > 0 else 0.0
        result["background_cores"] = max(0.0, others / wall)
        result["busy_cores_before"] = idle_busy
        result["facts"] = ep.facts
        return result


def main(argv: list[str] | None = None) -> int:
    args = _options(argv)
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(names) - set(candidates.NAMES) | set(phases) - {"closed", "open"}
    if args.baseline_ref and gateways.BASELINE not in names:
        names.append(gateways.BASELINE)
    if gateways.BASELINE in names and not args.baseline_ref:
        raise SystemExit(f"{gateways.BASELINE} needs --baseline-ref")
    if unknown:
        raise SystemExit(f"unknown candidate or phase: {', '.join(sorted(unknown))}")
    workroot = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    bench = Bench(args, workroot)
    if "gateway" in names and candidates.gateway_command(bench.gateway_src) is None:
        shutil.rmtree(workroot, ignore_errors=True)
        raise SystemExit("the gateway is not importable here; use --candidates upstream,naive")
    if bench.placement.load is not None:
        os.sched_setaffinity(0, {bench.placement.load})
    runs: report.Runs = {n: {p: [] for p in phases} for n in names}
    failures: list[str] = []
    deadline = time.monotonic() + args.max_minutes * 60
    started = time.monotonic()
    try:
        for run in range(args.runs):
            if time.monotonic() > deadline:
                failures.append(f"stopped before run {run + 1}: --max-minutes reached")
                break
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                for phase in phases:
                    label = f"run {run + 1}/{args.runs} {name:8} {phase:6}"
                    try:
                        result = bench.measure(name, phase, run)
                    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
                        failures.append(f"{label}: {e}")
                        runs[name][phase].append(None)
                        print(f"{label} FAILED: {e}", file=sys.stderr, flush=True)
                        continue
                    runs[name][phase].append(result)
                    if result["errors"]:
                        failures.append(f"{label}: {result['errors']} error responses")
                    lat = result["latency_us"]
                    print(
                        f"{label} {result['rps']:9.0f} req/s  p50 {lat['p50']:7.0f} µs  "
                        f"p99 {lat['p99']:7.0f} µs  p99.9 {lat['p999']:7.0f} µs  "
                        f"cpu {result['cpu_us_per_req']:6.1f} µs/req  errors {result['errors']}  "
                        f"background {result['background_cores']:.2f} cores",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workroot, ignore_errors=True)
    comp = report.comparisons(runs)
    doc: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "config": {
            "runs": args.runs,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rate": args.rate,
            "connections": args.connections,
            "max_conns": args.max_conns,
            "accounts": args.accounts,
            "closed_tool": "wrk" if bench.wrk else "asyncio",
            "upstream": candidates.upstream_impl(args.upstream),
            "gateway": bench.gateway_version,
            "placement": (
                f"process under test (and a gateway's Redis server) on CPU {bench.placement.dut}, "
                f"load generator and the "
                f"proxies' upstream on CPU {bench.placement.load} (taskset)"
                if bench.placement.dut is not None
                else "unpinned"
            ),
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        "summary": report.summarise(runs),
        "comparisons": comp,
        "targets": report.targets(comp),
        "failures": failures,
        "runs": runs,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / args.name
    png_problem = report.plot(doc, stem.with_suffix(".png"))
    if png_problem:
        doc["plot"] = png_problem
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    stem.with_suffix(".md").write_text(report.markdown(doc))
    print(report.markdown(doc), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
