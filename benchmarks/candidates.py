"""The processes under test, started fresh for every measurement and always stopped.

- ``upstream``: the fast upstream alone, the floor every other candidate sits on.
- ``naive``: ``benchmarks.naive_proxy`` in front of the fast upstream, the in-run reference.
- ``gateway``: ``order-gateway serve`` with every check on: SQLite store, a registered account
  whose static IP is 127.0.0.1, a session created from that IP holding its order slot, a pushed
  LTP (re-fetched from the fast upstream when older than ``ltp_max_age_s``), market orders
  converted, a rate limit high enough to admit everything but still counted.

The process under test goes on the measured core; the fast upstream it forwards to shares the
load core with the load generator, the same placement for both proxies.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib.util
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks import upstream as fast_upstream
from benchmarks.load import ORDER_BODY, ORDER_PATH

NAMES = ("upstream", "naive", "gateway")
HOST = "127.0.0.1"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 (a throwaway gateway on loopback)
USER_ID = "BENCH01"
START_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent


class StartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Placement:
    """Which core runs what; ``None`` leaves a process unpinned."""

    dut: int | None
    load: int | None

    @classmethod
    def detect(cls) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2 and shutil.which("taskset"):
            return cls(dut=cpus[-1], load=cpus[0])
        return cls(dut=None, load=None)


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    pid: int
    headers: tuple[tuple[str, str], ...] = ()
    facts: dict[str, str] = field(default_factory=dict)
    helpers: tuple[int, ...] = ()  # the fast upstream behind a proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_command(src: Path | None = None) -> list[str] | None:
    """How to start the gateway (from ``src`` when given), or None when there is none."""
    if src is not None:
        return [sys.executable, "-m", "gateway"] if (src / "gateway" / "cli.py").exists() else None
    if importlib.util.find_spec("gateway.cli") is None:
        return None
    script = Path(sys.executable).with_name("order-gateway")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())"]


@functools.cache
def _serve_takes_config(base: tuple[str, ...], src: Path | None) -> bool:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [*base, "serve", "--help"], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    return "--config" in done.stdout


def _serve_args(base: tuple[str, ...], config: Path, src: Path | None) -> list[str]:
    """SPEC §12 says ``serve --config``; early CLIs took ``--config`` before ``serve``."""
    if _serve_takes_config(base, src):
        return ["serve", "--config", str(config)]
    return ["--config", str(config), "serve"]


def upstream_impl(choice: str) -> str:
    if choice == "auto":
        return "nginx" if fast_upstream.nginx_binary() else "asyncio"
    if choice == "nginx" and not fast_upstream.nginx_binary():
        raise StartError("--upstream nginx: nginx is not installed")
    return choice


class _Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str] | None = None,
        src: Path | None = None,
    ) -> int:
        env = dict(os.environ if env is None else env)
        paths = [str(src) if src else "", str(ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        log = (self.workdir / f"{name}.log").open("wb")
        with log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._procs.append((name, proc))
        return proc.pid

    def check_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise StartError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")

    def log_tail(self, name: str, size: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / f"{name}.log").read_bytes()[-size:].decode(errors="replace")
        return ""

    def stop_all(self, timeout: float = 5.0) -> None:
        for _, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, proc in reversed(self._procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)


def _wait_for_port(port: int, procs: _Processes, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise StartError(f"nothing listening on {HOST}:{port} after {timeout:.0f} s")


def call(
    port: int,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request from 127.0.0.1 (the client IP the benchmark registers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10, source_address=(HOST, 0))
    try:
        payload = None if body is None else orjson.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _expect(what: str, answer: tuple[int, dict[str, str], bytes], *statuses: int) -> bytes:
    status, _, body = answer
    if status not in statuses:
        raise StartError(f"{what}: HTTP {status} {body[:300]!r}")
    return body


def _login(port: int, app: dict[str, str]) -> str:
    body = _expect("login", call(port, "POST", "/gateway/v1/session", app), 200, 201)
    token: str = orjson.loads(body)["data"]["access_token"]
    return token


def setup_gateway(port: int) -> tuple[tuple[str, str], dict[str, str]]:
    """Account, app, static IP, a fresh session from it and a pushed LTP, per SPEC §5, §12."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    account = {"user_id": USER_ID, "name": "Benchmark"}
    _expect("create account", call(port, "POST", "/admin/v1/accounts", account, admin), 201)
    raw = _expect(
        "create app", call(port, "POST", f"/admin/v1/accounts/{USER_ID}/apps", {}, admin), 201
    )
    app = orjson.loads(raw)
    app = {"api_key": app["api_key"], "api_secret": app["api_secret"]}
    token = _login(port, app)
    bearer = {"Authorization": f"Bearer {token}"}
    _expect("register IP", call(port, "PUT", "/v2/user/ip", {"primary_ip": HOST}, bearer), 200)
    token = _login(port, app)  # the IP change invalidated the first session
    ltp = {fast_upstream.INSTRUMENT: fast_upstream.LTP}
    _expect("push LTP", call(port, "PUT", "/admin/v1/ltp", ltp, admin), 204)
    auth = ("Authorization", f"Bearer {token}")
    status, headers, body = call(
        port, "POST", ORDER_PATH, orjson.loads(ORDER_BODY), {auth[0]: auth[1]}
    )
    if status != 200:
        raise StartError(f"probe order: HTTP {status} {body[:300]!r}")
    facts = {
        "probe_status": str(status),
        "order_type_sent": headers.get("x-gateway-order-type", ""),
        "limit_price": headers.get("x-gateway-limit-price", ""),
        "ltp": headers.get("x-gateway-ltp", ""),
    }
    if facts["order_type_sent"] != "LIMIT":
        raise StartError(f"probe order was not converted to LIMIT: {headers}")
    return auth, facts


def _gateway_config(workdir: Path, port: int, upstream_url: str) -> Path:
    path = workdir / "gateway.toml"
    path.write_text(
        f"""\
[server]
host = "{HOST}"
port = {port}

[admin]
token = "{ADMIN_TOKEN}"

[store]
url = "sqlite:///{workdir / "gw.db"}"

[upstream]
upstox = "{upstream_url}"
kotak = "{upstream_url}"
paradex = "{upstream_url}"
timeout_s = 5.0

[rules]
orders_per_second = 1000000
market_orders = "convert"
ltp_max_age_s = 2.0
"""
    )
    return path


def _start_upstream(procs: _Processes, impl: str, cpu: int | None) -> tuple[int, int]:
    port = free_port()
    if impl == "nginx":
        nginx = fast_upstream.nginx_binary()
        assert nginx is not None
        prefix = procs.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(fast_upstream.nginx_config(HOST, port, prefix))
        cmd = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    else:
        cmd = [sys.executable, "-m", "benchmarks.upstream", "--host", HOST, "--port", str(port)]
    pid = procs.start("upstream", pinned(cmd, cpu))
    _wait_for_port(port, procs)
    return port, pid


def snapshot(ref: str, dest: Path) -> str:
    """Export ``gateway/`` and ``rules/`` at git ``ref`` into ``dest``; the commit's short id.

    The benchmark then measures a commit, not a work tree that others may be editing.
    """
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        [*git, "archive", commit, "gateway", "rules"], capture_output=True, check=True, timeout=60
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return commit


@contextlib.contextmanager
def running(
    name: str,
    workdir: Path,
    placement: Placement,
    upstream: str = "auto",
    gateway_src: Path | None = None,
) -> Iterator[Endpoint]:
    """Start candidate ``name`` (and its upstream) in ``workdir``; stop everything after."""
    impl = upstream_impl(upstream)
    procs = _Processes(workdir)
    try:
        if name == "upstream":
            port, pid = _start_upstream(procs, impl, placement.dut)
            yield Endpoint(HOST, port, pid, facts={"upstream": impl})
            return
        up_port, up_pid = _start_upstream(procs, impl, placement.load)
        up_url = f"http://{HOST}:{up_port}"
        port = free_port()
        if name == "naive":
            cmd = [sys.executable, "-m", "benchmarks.naive_proxy", "--port", str(port)]
            pid = procs.start("naive", pinned([*cmd, "--upstream", up_url], placement.dut))
            _wait_for_port(port, procs)
            yield Endpoint(HOST, port, pid, facts={"upstream": impl}, helpers=(up_pid,))
            return
        if name != "gateway":
            raise StartError(f"unknown candidate {name!r}")
        base = gateway_command(gateway_src)
        if base is None:
            raise StartError("gateway.cli is not importable in this checkout")
        config = _gateway_config(workdir, port, up_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["GATEWAY_ADMIN_TOKEN"] = ADMIN_TOKEN
        cmd = pinned([*base, *_serve_args(tuple(base), config, gateway_src)], placement.dut)
        pid = procs.start("gateway", cmd, env, gateway_src)
        _wait_for_port(port, procs)
        auth, facts = setup_gateway(port)
        procs.check_alive()
        yield Endpoint(HOST, port, pid, (auth,), {"upstream": impl, **facts}, (up_pid,))
    finally:
        procs.stop_all()
