"""Turn per-run measurements into the summary, the Markdown table and the PNG plot.

Every figure is a median over runs with its min–max. Ratios and deltas are taken inside one run
(gateway and reference measured minutes apart on the same machine state) and then summarised
the same way, which is what the issue's targets are stated in.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]
# (candidate, phase) -> one LoadResult-like dict per run, None where that run failed
Runs = dict[str, dict[str, list[Json | None]]]

TARGET_RPS_RATIO = 1.0
TARGET_P50_US = 200.0
TARGET_P99_US = 500.0


def _field(key: str) -> Callable[[Json], float]:
    """A result's number; NaN (left out of every summary) where an older result lacks it."""
    return lambda r: float(r.get(key, math.nan))


_METRICS: tuple[tuple[str, str, Callable[[Json], float]], ...] = (
    ("closed", "rps", lambda r: float(r["rps"])),
    ("closed", "p50_us", lambda r: float(r["latency_us"]["p50"])),
    ("closed", "p99_us", lambda r: float(r["latency_us"]["p99"])),
    ("closed", "cpu_us_per_req", _field("cpu_us_per_req")),
    ("closed", "store_cpu_us_per_req", _field("store_cpu_us_per_req")),
    ("closed", "orders_per_core", _field("orders_per_core")),
    ("open", "p50_us", lambda r: float(r["latency_us"]["p50"])),
    ("open", "p99_us", lambda r: float(r["latency_us"]["p99"])),
    ("open", "p999_us", lambda r: float(r["latency_us"]["p999"])),
    ("open", "cpu_us_per_req", _field("cpu_us_per_req")),
    ("open", "store_cpu_us_per_req", _field("store_cpu_us_per_req")),
)


def spread(values: Iterable[float]) -> Json:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def _valid(result: Json | None) -> bool:
    return result is not None and "error" not in result and result.get("requests", 0) > 0


def summarise(runs: Runs) -> Json:
    out: Json = {}
    for name, phases in runs.items():
        cand: Json = {}
        for phase, metric, get in _METRICS:
            results = [r for r in phases.get(phase, []) if r is not None and _valid(r)]
            cand.setdefault(phase, {})[metric] = spread(get(r) for r in results)
        out[name] = cand
    return out


def _paired(
    runs: Runs, a: str, b: str, phase: str, get: Callable[[Json], float]
) -> list[tuple[float, float]]:
    left = runs.get(a, {}).get(phase, [])
    right = runs.get(b, {}).get(phase, [])
    return [
        (get(x), get(y))
        for x, y in zip(left, right, strict=False)
        if x is not None and y is not None and _valid(x) and _valid(y)
    ]


def _latency(pct: str) -> Callable[[Json], float]:
    return lambda r: float(r["latency_us"][pct])


def reference(name: str) -> str | None:
    """What a gateway variant is read against: its one-account self for a ``-many`` shape,
    else the SQLite gateway; None for the three original candidates."""
    if name.endswith("-many"):
        return name.removesuffix("-many")
    if name.startswith("gateway-"):
        return "gateway"
    return None


def _ratio(
    out: Json, runs: Runs, a: str, b: str, phase: str, key: str, get: Callable[[Json], float]
) -> None:
    pairs = [(x, y) for x, y in _paired(runs, a, b, phase, get) if y and math.isfinite(x / y)]
    if pairs:
        out[f"{a}/{b} {key}"] = spread(x / y for x, y in pairs)


def comparisons(runs: Runs) -> Json:
    """Per-run ratios and deltas, each summarised as median and min–max."""

    def rps(r: Json) -> float:
        return float(r["rps"])

    out: Json = {}
    for a, b in (("gateway", "naive"), ("gateway", "upstream"), ("naive", "upstream")):
        _ratio(out, runs, a, b, "closed", "req/s", rps)
        for pct in ("p50", "p99", "p999"):
            pairs = _paired(runs, a, b, "open", _latency(pct))
            if pairs:
                out[f"{a}-{b} open {pct} us"] = spread(x - y for x, y in pairs)
    for name in runs:
        ref = reference(name)
        if ref is None:
            continue
        _ratio(out, runs, name, "naive", "closed", "req/s", rps)
        _ratio(out, runs, name, ref, "closed", "req/s", rps)
        _ratio(out, runs, name, ref, "closed", "CPU per order", _field("cpu_us_per_req"))
        _ratio(out, runs, name, ref, "closed", "orders/s per busy core", _field("orders_per_core"))
        _ratio(out, runs, name, ref, "open", "CPU per order (open)", _field("cpu_us_per_req"))
    return out


def targets(comp: Json) -> list[Json]:
    def check(key: str, what: str, ok: Callable[[float], bool]) -> Json:
        median = comp.get(key, {}).get("median")
        return {
            "target": what,
            "measured": key,
            "median": median,
            "met": None if median is None else ok(median),
        }

    return [
        check(
            "gateway/naive req/s",
            f"gateway req/s >= {TARGET_RPS_RATIO:.1f}x the naive proxy",
            lambda v: v >= TARGET_RPS_RATIO,
        ),
        check(
            "gateway-upstream open p50 us",
            f"gateway adds <= {TARGET_P50_US:.0f} us p50 over the upstream at the open-loop rate",
            lambda v: v <= TARGET_P50_US,
        ),
        check(
            "gateway-upstream open p99 us",
            f"gateway adds <= {TARGET_P99_US:.0f} us p99 over the upstream at the open-loop rate",
            lambda v: v <= TARGET_P99_US,
        ),
    ]


def _fmt(stat: Json, digits: int = 0, unit: str = "") -> str:
    if not stat or stat.get("median") is None:
        return "n/a"
    med, lo, hi = stat["median"], stat["min"], stat["max"]
    if stat["n"] == 1:
        return f"{med:,.{digits}f}{unit}"
    return f"{med:,.{digits}f}{unit} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def markdown(doc: Json) -> str:
    cfg, machine = doc["config"], doc["machine"]
    lines = [
        f"# order-gateway benchmark, {doc['date']}",
        "",
        f"Machine: {machine['summary']}.",
        f"Placement: {cfg['placement']}. Upstream: {cfg['upstream']}. "
        f"Closed loop: {cfg['closed_tool']}, {cfg['connections']} keep-alive connections, "
        f"{cfg['duration_s']:g} s. Open loop: {cfg['rate']:g} orders/s for "
        f"{cfg['duration_s']:g} s, latency from the scheduled send time. "
        f"{cfg['runs']} run(s) per candidate, interleaved, fresh processes each time. "
        f"Gateway: {cfg.get('gateway', 'work tree')}.",
        "",
        "Median (min–max) over runs. Latency in µs. CPU µs/req counts every process of the "
        "candidate (a gateway's workers and its Redis server), not the upstream; of it, the "
        "Redis server's share is the store column. Orders/s per busy core: orders per "
        "CPU-second of those processes.",
        "",
        "| candidate | req/s | closed p50 | closed p99 | CPU µs/req (closed) | store µs/req "
        "| orders/s per busy core | open p50 | open p99 | open p99.9 | CPU µs/req (open) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in doc["summary"].items():
        c, o = s["closed"], s["open"]
        store, per_core = c.get("store_cpu_us_per_req", {}), c.get("orders_per_core", {})
        lines.append(
            f"| {name} | {_fmt(c['rps'])} | {_fmt(c['p50_us'])} | {_fmt(c['p99_us'])} "
            f"| {_fmt(c['cpu_us_per_req'])} | {_fmt(store)} | {_fmt(per_core)} "
            f"| {_fmt(o['p50_us'])} | {_fmt(o['p99_us'])} "
            f"| {_fmt(o['p999_us'])} | {_fmt(o['cpu_us_per_req'])} |"
        )
    lines += ["", "Within-run comparisons, median (min–max):", ""]
    for key, stat in doc["comparisons"].items():
        digits, unit = (2, "×") if "/" in key else (0, " µs")
        lines.append(f"- {key.replace(' us', '')}: {_fmt(stat, digits, unit)}")
    lines += ["", "Targets:", ""]
    for t in doc["targets"]:
        mark = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"- {t['target']}: **{mark}**")
    background = [
        r["background_cores"]
        for phases in doc["runs"].values()
        for results in phases.values()
        for r in results
        if r is not None and "background_cores" in r
    ]
    if background:
        lines += [
            "",
            f"Other processes on the machine used {statistics.median(background):.2f} cores "
            f"(median; max {max(background):.2f}) during the measurements.",
        ]
    if doc.get("failures"):
        lines += ["", "Failed measurements:", ""]
        lines += [f"- {f}" for f in doc["failures"]]
    return "\n".join(lines) + "\n"


def plot(doc: Json, path: Path) -> str | None:
    """Write the PNG; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    names: Sequence[str] = list(doc["summary"])
    fig, (lat_ax, rps_ax) = plt.subplots(
        1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]}
    )
    pcts = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))
    width = 0.8 / len(pcts)
    for k, (key, label) in enumerate(pcts):
        meds, los, his = [], [], []
        for name in names:
            stat = doc["summary"][name]["open"][key]
            med = stat["median"] or 0.0
            meds.append(med)
            los.append(med - (stat["min"] if stat["min"] is not None else med))
            his.append((stat["max"] if stat["max"] is not None else med) - med)
        xs = [i + (k - 1) * width for i in range(len(names))]
        lat_ax.bar(xs, meds, width, yerr=[los, his], capsize=3, label=label)
    lat_ax.set_xticks(range(len(names)), names)
    lat_ax.set_yscale("log")
    lat_ax.set_ylabel("latency (µs), log scale")
    rate = doc["config"]["rate"]
    lat_ax.set_title(f"open loop, {rate:g} orders/s: latency percentiles")
    lat_ax.legend()
    meds, los, his = [], [], []
    for name in names:
        stat = doc["summary"][name]["closed"]["rps"]
        med = stat["median"] or 0.0
        meds.append(med)
        los.append(med - (stat["min"] if stat["min"] is not None else med))
        his.append((stat["max"] if stat["max"] is not None else med) - med)
    rps_ax.bar(range(len(names)), meds, 0.6, yerr=[los, his], capsize=3, color="tab:gray")
    for i, med in enumerate(meds):
        rps_ax.annotate(f"{med:,.0f}", (i, med), ha="center", va="bottom", fontsize=8)
    rps_ax.set_xticks(range(len(names)), names)
    rps_ax.set_yscale("log")
    rps_ax.set_ylabel("requests/s, log scale")
    rps_ax.set_title(f"closed loop, {doc['config']['connections']} connections")
    fig.suptitle(f"{doc['machine']['summary']}; median, bars min–max", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Re-render ``<stem>.md`` and ``<stem>.png`` from ``<stem>.json``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("json", type=Path)
    args = parser.parse_args(argv)
    doc = json.loads(args.json.read_text())
    args.json.with_suffix(".md").write_text(markdown(doc))
    plot(doc, args.json.with_suffix(".png"))


if __name__ == "__main__":
    main()
