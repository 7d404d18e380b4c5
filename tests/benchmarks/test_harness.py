"""The benchmark harness runs end to end on a tiny load; no timing is asserted here.

The numbers are the benchmark's to report (``make bench``); these tests only check that every
candidate starts, the gateway admits and converts the benchmark's orders, and the result files
are written.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gateways, httpwire, load, profile, report, upstream

ROOT = Path(__file__).resolve().parents[2]


def _bench(out: Path, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--out-dir", str(out)]
    cmd += ["--name", "smoke", "--max-minutes", "2", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc: dict[str, Any] = json.loads((out / "smoke.json").read_text())
    assert (out / "smoke.md").read_text().startswith("# order-gateway benchmark")
    return doc


def _check_runs(doc: dict[str, Any], names: list[str]) -> None:
    assert doc["failures"] == []
    for name in names:
        for phase in ("closed", "open"):
            (result,) = doc["runs"][name][phase]
            assert result["requests"] > 0
            assert result["errors"] == 0
            assert result["cpu_s"] >= 0


def test_all_candidates_end_to_end(tmp_path: Path) -> None:
    names = ["upstream", "naive", "gateway"]
    doc = _bench(tmp_path, "--candidates", ",".join(names))
    _check_runs(doc, names)
    facts = doc["runs"]["gateway"]["open"][0]["facts"]
    assert facts["order_type_sent"] == "LIMIT"
    assert facts["ltp"] == "1401.5"
    assert {t["measured"] for t in doc["targets"]} == {
        "gateway/naive req/s",
        "gateway-upstream open p50 us",
        "gateway-upstream open p99 us",
    }
    assert all(t["met"] is not None for t in doc["targets"])
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "smoke.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_redis_workers_and_many_accounts_end_to_end(tmp_path: Path) -> None:
    """Each Redis gateway runs on a Redis server of its own whose CPU is counted with it."""
    names = ["gateway", "gateway-redis", "gateway-redis-w2", "gateway-redis-many"]
    doc = _bench(tmp_path, "--candidates", ",".join(names), "--accounts", "5")
    _check_runs(doc, names)
    for name in names[1:]:
        for phase in ("closed", "open"):
            (result,) = doc["runs"][name][phase]
            facts = result["facts"]
            assert facts["store"] == "redis"
            assert facts["order_type_sent"] == "LIMIT"
            assert result["store_cpu_s"] > 0  # the Redis server worked for these orders
            assert result["cpu_s"] == pytest.approx(result["process_cpu_s"] + result["store_cpu_s"])
            assert result["orders_per_core"] == pytest.approx(result["requests"] / result["cpu_s"])
    assert "store_cpu_s" not in doc["runs"]["gateway"]["closed"][0]
    w2 = doc["runs"]["gateway-redis-w2"]["closed"][0]["facts"]
    assert (w2["workers"], w2["processes"]) == ("2", "2")  # the parent is worker 0
    many = doc["runs"]["gateway-redis-many"]["open"][0]["facts"]
    assert many["accounts"] == "5"
    for key in (
        "gateway-redis/gateway CPU per order",
        "gateway-redis-w2/gateway orders/s per busy core",
        "gateway-redis-many/gateway-redis req/s",
    ):
        assert doc["comparisons"][key]["n"] == 1


def test_pure_python_fallbacks(tmp_path: Path) -> None:
    """Without wrk and nginx: the asyncio upstream and the asyncio closed loop."""
    names = ["upstream", "naive"]
    args = ["--upstream", "asyncio", "--closed-tool", "asyncio", "--no-pin"]
    doc = _bench(tmp_path, "--candidates", ",".join(names), *args)
    _check_runs(doc, names)
    assert doc["config"]["closed_tool"] == "asyncio"
    assert doc["runs"]["naive"]["closed"][0]["facts"]["upstream"] == "asyncio"


@pytest.mark.parametrize(
    ("raw", "body", "end"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}rest", b"{}", 40),
        (b"HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", b"", 37),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", 27),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n1\r\n \r\n0\r\n\r\n",
            b"{} ",
            65,
        ),
    ],
)
def test_response_framing(raw: bytes, body: bytes, end: int) -> None:
    msg = httpwire.parse(raw, response=True)
    assert msg is not None
    assert (msg.body, msg.end) == (body, end)
    assert httpwire.parse(raw[: end - 1], response=True) is None or end == len(raw) - 4


def test_request_framing_and_fixed_answers() -> None:
    req = load.Target("127.0.0.1", 1).request()
    msg = httpwire.parse(req + req)
    assert msg is not None
    assert msg.body == load.ORDER_BODY
    assert msg.end == len(req)
    assert 140 <= len(upstream.ORDER_BODY) <= 170
    json.loads(upstream.ORDER_BODY)
    ltp = json.loads(upstream.LTP_BODY)["data"]["NSE_EQ:RELIANCE"]
    assert ltp == {"last_price": upstream.LTP, "instrument_token": upstream.INSTRUMENT}


def test_percentiles_and_within_run_comparisons() -> None:
    assert load.percentiles_us([i / 1e6 for i in range(1, 1001)])["p999"] == pytest.approx(999)

    def result(rps: float, p50: float) -> dict[str, Any]:
        lat = {"p50": p50, "p99": 2 * p50, "p999": 3 * p50}
        return {"requests": 10, "rps": rps, "latency_us": lat, "cpu_us_per_req": 1.0}

    runs: report.Runs = {
        "upstream": {"closed": [result(100, 50), result(100, 50)], "open": [result(9, 50)] * 2},
        "naive": {"closed": [result(10, 0), result(20, 0)], "open": [result(9, 150)] * 2},
        "gateway": {"closed": [result(10, 0), None], "open": [result(9, 300), None]},
    }
    comp = report.comparisons(runs)
    assert comp["gateway/naive req/s"] == {"median": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    assert comp["naive/upstream req/s"]["median"] == pytest.approx(0.15)
    assert comp["gateway-upstream open p50 us"]["median"] == 250
    met = [t["met"] for t in report.targets(comp)]
    assert met == [True, False, True]


def test_candidate_names_and_what_each_is_read_against() -> None:
    assert gateways.GatewaySpec.of("gateway") == gateways.GatewaySpec("sqlite", 1, many=False)
    assert gateways.GatewaySpec.of("gateway-redis-w2-many") == gateways.GatewaySpec(
        "redis", 2, many=True
    )
    assert gateways.GatewaySpec.of("naive") is None
    assert [report.reference(n) for n in ("gateway", "gateway-redis", "gateway-redis-many")] == [
        None,
        "gateway",
        "gateway-redis",
    ]
    assert len({gateways.account_ip(n) for n in range(1000)}) == 1000


def test_identities_go_round_robin_one_request_each() -> None:
    ids = tuple(
        (("Authorization", f"Bearer t{n}"), ("X-Forwarded-For", f"10.0.0.{n}")) for n in range(3)
    )
    requests = load.Target("127.0.0.1", 1, identities=ids).requests()
    assert len(requests) == 3
    for n, request in enumerate(requests):
        msg = httpwire.parse(request)
        assert msg is not None and msg.body == load.ORDER_BODY
        assert f"Bearer t{n}\r\nX-Forwarded-For: 10.0.0.{n}\r\n".encode() in request
    assert load.Target("127.0.0.1", 1).requests() == [load.Target("127.0.0.1", 1).request()]


def test_cpu_ratios_are_taken_within_a_run() -> None:
    def result(rps: float, cpu_us: float) -> dict[str, Any]:
        lat = {"p50": 1.0, "p99": 1.0, "p999": 1.0}
        per_core = 1e6 / cpu_us
        return {
            "requests": 10,
            "rps": rps,
            "latency_us": lat,
            "cpu_us_per_req": cpu_us,
            "orders_per_core": per_core,
        }

    runs: report.Runs = {
        "naive": {"closed": [result(100, 100), result(100, 100)], "open": []},
        "gateway": {"closed": [result(50, 200), result(40, 300)], "open": []},
        "gateway-redis": {"closed": [result(25, 400), result(40, 300)], "open": []},
    }
    comp = report.comparisons(runs)
    assert comp["gateway-redis/gateway CPU per order"]["median"] == pytest.approx(1.5)
    assert comp["gateway-redis/gateway orders/s per busy core"]["min"] == pytest.approx(0.5)
    assert comp["gateway-redis/naive req/s"]["max"] == pytest.approx(0.4)
    assert "gateway-redis-many/gateway-redis req/s" not in comp


def test_profile_counts_self_time_by_leaf_frame() -> None:
    site = "/v/lib/python3.11/site-packages"
    raw = "\n".join(
        [
            "run (x.py:1);admit (/w/gateway/stores/redis/admission.py:52) 3",
            f"run (x.py:1);execute_command ({site}/redis/asyncio/client.py:610) 5",
            f"run (x.py:1);pack_command ({site}/redis/asyncio/connection.py:700) 2",
            "garbage line",
        ]
    )
    functions, packages, total = profile.self_samples(raw)
    assert total == 10
    assert packages == {"gateway/stores/redis/admission": 3, "redis": 7}
    assert functions["execute_command [redis]"] == 5
    assert profile.package("/usr/lib/python3.11/json/decoder.py") == "stdlib"
