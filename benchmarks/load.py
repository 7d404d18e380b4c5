"""Load generators, each run as its own process pinned to the load core.

- ``open``: open loop at a fixed rate (the latency measurement). Request ``i`` is scheduled at
  ``t0 + i / rate`` and its latency is taken from that scheduled time, not from when it was
  actually written, so a stalled server is charged for every request it delayed (no coordinated
  omission, as wrk2 does it). It runs on asyncio's ``SelectSelector`` loop: ``select(2)`` takes
  a timeout in microseconds where epoll and libuv round up to whole milliseconds, which would
  add up to 1 ms of the sender's own lateness to every sample. It sleeps (timer slack cut to
  1 µs, prctl(2) ``PR_SET_TIMERSLACK``) until 300 µs before a send and polls the loop for the
  rest, since waking a halted vCPU takes ~100 µs here; it does not poll throughout, because on
  a VM whose vCPUs share a CPU budget a polling sender takes CPU time from the process under
  test. What lateness remains is reported as ``send_lag_us``.
  Requests go out on keep-alive connections, one request in flight per connection, opened on
  demand up to ``--max-conns``; past that a request waits for a connection, and the wait counts.
- ``closed``: a fixed set of keep-alive connections, each sending its next request as soon as
  the previous answer arrived (the throughput measurement). wrk does this when installed
  (``wrk_command``); this asyncio version is the fallback, and the only one for ``--identities``.

With ``--identities`` (the many-accounts shapes) request ``i`` carries the ``i``-th header set,
round-robin, whatever connection it goes out on; every request is built before the clock starts.

Each prints one JSON line (``LoadResult``) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import selectors
import sys
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import TypedDict, cast

import uvloop

from benchmarks import httpwire

ORDER_PATH = "/v2/order/place"
ORDER_BODY = (
    b'{"quantity":1,"product":"D","validity":"DAY","price":0,"tag":"bench",'
    b'"instrument_token":"NSE_EQ|INE002A01018","order_type":"MARKET","transaction_type":"BUY",'
    b'"disclosed_quantity":0,"trigger_price":0,"is_amo":false}'
)
_PR_SET_TIMERSLACK = 29  # linux/prctl.h
_POLL_S = 0.0003


class LoadResult(TypedDict, total=False):
    tool: str
    mode: str
    requests: int
    errors: int
    statuses: dict[str, int]
    elapsed_s: float
    rps: float
    latency_us: dict[str, float]
    send_lag_us: dict[str, float]
    connections: int


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str = ORDER_PATH
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = ORDER_BODY
    # one extra header set per account; the requests go round-robin over them
    identities: tuple[tuple[tuple[str, str], ...], ...] = ()

    def request(self, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (*self.headers, *extra)]
        lines += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def requests(self) -> list[bytes]:
        """Every distinct request, built once: one per identity, or the one request."""
        return [self.request(extra) for extra in self.identities] or [self.request()]


def percentiles_us(samples_s: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles in microseconds."""
    if not samples_s:
        return {}
    ordered = sorted(samples_s)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered) / 100 - 1e-9) - 1)] * 1e6

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p999": rank(99.9),
        "max": ordered[-1] * 1e6,
        "mean": sum(ordered) / len(ordered) * 1e6,
    }


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(
        self,
        on_response: Callable[[_Conn, int, float], None],
        on_lost: Callable[[_Conn], None],
    ) -> None:
        self._on_response = on_response
        self._on_lost = on_lost
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, request: bytes, started: float) -> None:
        assert self.transport is not None
        self.started = started
        self.busy = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            msg = httpwire.parse(self._buf, response=True)
        except httpwire.FramingError:
            assert self.transport is not None
            self.transport.close()
            return
        if msg is None:
            return
        now = monotonic()
        del self._buf[: msg.end]
        self.busy = False
        self._on_response(self, httpwire.status_of(msg.start_line), now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self)


async def _connect(target: Target, conn: _Conn) -> _Conn:
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: conn, target.host, target.port)
    return conn


async def _wait_until(when: float) -> None:
    if (left := when - monotonic()) > _POLL_S:
        await asyncio.sleep(left - _POLL_S)
    while monotonic() < when:  # noqa: ASYNC110 (each pass polls the sockets: select(0))
        await asyncio.sleep(0)


def _fine_timer_slack() -> None:
    """Ask for 1 µs timer slack instead of the default 50 µs (Linux only; best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)


async def open_loop(
    target: Target,
    rate: float,
    duration: float,
    max_conns: int,
    drain_s: float = 5.0,
) -> LoadResult:
    loop = asyncio.get_running_loop()
    requests = target.requests()
    total = max(1, round(rate * duration))
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[int] = Counter()
    idle: list[_Conn] = []
    waiters: deque[asyncio.Future[_Conn]] = deque()
    conns: set[_Conn] = set()
    lost_in_flight = 0
    finished = asyncio.Event()

    def release(conn: _Conn) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        idle.append(conn)

    def on_response(conn: _Conn, status: int, now: float) -> None:
        latencies.append(now - conn.started)
        statuses[status] += 1
        release(conn)
        if len(latencies) + lost_in_flight >= total:
            finished.set()

    def on_lost(conn: _Conn) -> None:
        nonlocal lost_in_flight
        conns.discard(conn)
        if conn in idle:
            idle.remove(conn)
        if conn.busy:
            conn.busy = False
            lost_in_flight += 1
            if len(latencies) + lost_in_flight >= total:
                finished.set()

    def new_conn() -> _Conn:
        conn = _Conn(on_response, on_lost)
        conns.add(conn)
        return conn

    async def acquire() -> _Conn:
        if idle:
            return idle.pop()
        if len(conns) < max_conns:
            return await _connect(target, new_conn())
        waiter: asyncio.Future[_Conn] = loop.create_future()
        waiters.append(waiter)
        return await waiter

    for conn in await asyncio.gather(*(_connect(target, new_conn()) for _ in range(4))):
        idle.append(conn)
    interval = 1.0 / rate
    t0 = monotonic() + 0.01
    for i in range(total):
        scheduled = t0 + i * interval
        await _wait_until(scheduled)
        conn = await acquire()
        lags.append(monotonic() - scheduled)
        conn.send(requests[i % len(requests)], scheduled)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), drain_s)
    elapsed = monotonic() - t0
    peak = len(conns)
    for conn in list(conns):
        if conn.transport is not None:
            conn.transport.close()
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return LoadResult(
        tool="asyncio",
        mode="open",
        requests=len(latencies),
        errors=total - ok,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        elapsed_s=elapsed,
        rps=len(latencies) / elapsed,
        latency_us=percentiles_us(latencies),
        send_lag_us=percentiles_us(lags),
        connections=peak,
    )


async def closed_loop(target: Target, connections: int, duration: float) -> LoadResult:
    requests = target.requests()
    sent = 0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    stopped = 0
    lost = 0
    finished = asyncio.Event()
    deadline = math.inf
    last = 0.0

    def stop_one() -> None:
        nonlocal stopped
        stopped += 1
        if stopped >= connections:
            finished.set()

    def send(conn: _Conn, now: float) -> None:
        nonlocal sent
        conn.send(requests[sent % len(requests)], now)
        sent += 1

    def on_response(conn: _Conn, status: int, now: float) -> None:
        nonlocal last
        latencies.append(now - conn.started)
        statuses[status] += 1
        last = now
        if now < deadline:
            send(conn, now)
        else:
            stop_one()

    def on_lost(conn: _Conn) -> None:
        nonlocal lost
        if conn.busy:
            conn.busy = False
            lost += 1
            stop_one()

    conns = await asyncio.gather(
        *(_connect(target, _Conn(on_response, on_lost)) for _ in range(connections))
    )
    t0 = monotonic()
    deadline = t0 + duration
    for conn in conns:
        send(conn, monotonic())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), duration + 5.0)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    elapsed = (last or monotonic()) - t0
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return LoadResult(
        tool="asyncio",
        mode="closed",
        requests=len(latencies),
        errors=len(latencies) - ok + lost,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        elapsed_s=elapsed,
        rps=len(latencies) / elapsed,
        latency_us=percentiles_us(latencies),
        connections=connections,
    )


def _target(args: argparse.Namespace) -> Target:
    headers = tuple(
        (name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in args.header)
    )
    identities: tuple[tuple[tuple[str, str], ...], ...] = ()
    if args.identities is not None:
        raw = json.loads(args.identities.read_text())
        identities = tuple(tuple((str(k), str(v)) for k, v in one) for one in raw)
    return Target(args.host, args.port, args.path, headers=headers, identities=identities)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="benchmark load generator")
    parser.add_argument("mode", choices=("open", "closed"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default=ORDER_PATH)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument(
        "--identities",
        type=Path,
        help="JSON [[[name, value], ...], ...]: header sets the requests go round-robin over",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--max-conns", type=int, default=128)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    target = _target(args)
    if args.mode == "open":
        _fine_timer_slack()
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        try:
            result = loop.run_until_complete(
                open_loop(target, args.rate, args.duration, args.max_conns)
            )
        finally:
            loop.close()
    else:
        result = uvloop.run(closed_loop(target, args.connections, args.duration))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
