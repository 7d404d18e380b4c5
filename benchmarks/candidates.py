"""The processes under test, started fresh for every measurement and always stopped.

- ``upstream``: the fast upstream alone, the floor every other candidate sits on.
- ``naive``: ``benchmarks.naive_proxy`` in front of the fast upstream, the in-run reference.
- ``gateway``: ``order-gateway serve`` with every check on: SQLite store, a registered account
  whose static IP is 127.0.0.1, a session created from that IP holding its order slot, a pushed
  LTP (re-fetched from the fast upstream when older than ``ltp_max_age_s``), market orders
  converted, a rate limit high enough to admit everything but still counted.
- ``gateway-redis``, ``gateway-redis-w2`` and the ``-many`` shapes: see ``gateways``.

The process under test goes on the measured core, and so does the Redis server behind a
gateway (its CPU is counted with the gateway's: ``Endpoint.system``); the fast upstream it
forwards to shares the load core with the load generator, the same placement for both proxies.
"""

from __future__ import annotations

import contextlib
import functools
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

from benchmarks import cpu, gateways
from benchmarks import upstream as fast_upstream
from benchmarks.gateways import HOST, Headers, SetupError

NAMES = ("upstream", "naive", *gateways.NAMES, gateways.BASELINE)
START_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent


class StartError(SetupError):
    pass


@dataclass(frozen=True)
class Placement:
    """Which core runs what; ``None`` leaves a process unpinned."""

    dut: int | None
    load: int | None
    # a gateway's Redis server: with the process under test unless told otherwise
    # (``benchmarks.profile --redis-core load``)
    store: int | None = None

    @property
    def store_cpu(self) -> int | None:
        return self.dut if self.store is None else self.store

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
    headers: Headers = ()
    facts: dict[str, str] = field(default_factory=dict)
    helpers: tuple[int, ...] = ()  # the fast upstream behind a proxy
    # processes that are part of the candidate besides ``pid`` (a gateway's Redis server)
    system: tuple[int, ...] = ()
    # one header set per account, orders spread round-robin over them (the -many shapes)
    identities: tuple[Headers, ...] = ()


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


def _start_redis(procs: _Processes, cpu: int | None) -> tuple[str, int]:
    """A fresh ``redis-server`` for one measurement: its URL and pid."""
    binary = gateways.redis_server()
    if binary is None:
        raise StartError("the Redis candidates need redis-server on PATH")
    port = free_port()
    pid = procs.start("redis", pinned(gateways.redis_command(binary, port, procs.workdir), cpu))
    _wait_for_port(port, procs)
    return f"redis://{HOST}:{port}/0?prefix=bench:", pid


def _start_gateway(
    procs: _Processes,
    spec: gateways.GatewaySpec,
    placement: Placement,
    upstream: tuple[str, int, str],
    gateway_src: Path | None,
    accounts: int,
) -> Endpoint:
    """``upstream``: the fast upstream's URL, pid and implementation."""
    up_url, up_pid, impl = upstream
    base = gateway_command(gateway_src)
    if base is None:
        raise StartError("gateway.cli is not importable in this checkout")
    store_url = f"sqlite:///{procs.workdir / 'gw.db'}"
    system: tuple[int, ...] = ()
    if spec.store == "redis":
        store_url, redis_pid = _start_redis(procs, placement.store_cpu)
        system = (redis_pid,)
    port = free_port()
    config = gateways.config(procs.workdir, port, up_url, store_url, spec.many)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_ADMIN_TOKEN"] = gateways.ADMIN_TOKEN
    args = _serve_args(tuple(base), config, gateway_src)
    if spec.workers > 1:
        args += ["--workers", str(spec.workers)]
    pid = procs.start("gateway", pinned([*base, *args], placement.dut), env, gateway_src)
    _wait_for_port(port, procs)
    identities: tuple[Headers, ...] = ()
    if spec.many:
        identities, facts = gateways.setup_many(port, accounts)
        auth: Headers = ()
    else:
        auth, facts = gateways.setup_one(port)
    procs.check_alive()
    facts = {"upstream": impl, **facts, "store": spec.store, "workers": str(spec.workers)}
    facts["processes"] = str(len(cpu.tree(pid)))  # `--workers 2`: the parent serves too
    if spec.store == "redis":
        facts["store_url"] = store_url
    return Endpoint(HOST, port, pid, auth, facts, (up_pid,), system, identities)


@contextlib.contextmanager
def running(
    name: str,
    workdir: Path,
    placement: Placement,
    upstream: str = "auto",
    gateway_src: Path | None = None,
    accounts: int = gateways.DEFAULT_ACCOUNTS,
) -> Iterator[Endpoint]:
    """Start candidate ``name`` (and its upstream) in ``workdir``; stop everything after."""
    impl = upstream_impl(upstream)
    procs = _Processes(workdir)
    try:
        if name == "upstream":
            port, pid = _start_upstream(procs, impl, placement.dut)
            yield Endpoint(HOST, port, pid, facts={"upstream": impl})
            return
        spec = gateways.GatewaySpec.of(name)
        if name != "naive" and spec is None:
            raise StartError(f"unknown candidate {name!r}")
        up_port, up_pid = _start_upstream(procs, impl, placement.load)
        up_url = f"http://{HOST}:{up_port}"
        if spec is None:
            port = free_port()
            cmd = [sys.executable, "-m", "benchmarks.naive_proxy", "--port", str(port)]
            pid = procs.start("naive", pinned([*cmd, "--upstream", up_url], placement.dut))
            _wait_for_port(port, procs)
            yield Endpoint(HOST, port, pid, facts={"upstream": impl}, helpers=(up_pid,))
            return
        yield _start_gateway(procs, spec, placement, (up_url, up_pid, impl), gateway_src, accounts)
    finally:
        procs.stop_all()
