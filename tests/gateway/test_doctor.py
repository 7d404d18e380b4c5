"""``order-gateway doctor`` against real loopback servers: a healthy set-up passes, and each
broken piece is named with what to do."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from gateway.config import Config, load_config
from gateway.doctor import Check, diagnose, render
from gateway.instruments import UPSTOX_SAMPLE, sample_data

from ..process import ROOT, clean_env, free_port


def write_config(tmp_path: Path, upstream: str, **extra: str) -> Path:
    master = tmp_path / "instruments.json"
    master.write_bytes(sample_data(UPSTOX_SAMPLE))
    lines = [
        "[admin]",
        f'token = "{extra.get("token", "doctor-token")}"',
        "[store]",
        f'url = "sqlite:///{tmp_path}/gateway.db"',
        "[upstream]",
        f'upstox = "{upstream}"',
        f'kotak = "{upstream}"',
        "[instruments]",
        f'files = ["{master}"]',
        "[server]",
        f'host = "{extra.get("host", "127.0.0.1")}"',
    ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def base(paper: TestServer) -> str:
    return str(paper.make_url("")).rstrip("/")


def failed(checks: list[Check]) -> list[str]:
    return [check.name for check in checks if not check.ok]


async def run_doctor(path: Path) -> tuple[int, str]:
    """The real command, as a process (the paper broker serves on this test's loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--config",
        str(path),
        "doctor",
        env=clean_env(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None, err
    return process.returncode, out.decode()


async def test_a_healthy_set_up_passes_every_check_and_exits_0(
    paper: TestServer, tmp_path: Path
) -> None:
    code, out = await run_doctor(write_config(tmp_path, base(paper)))

    assert code == 0, out
    assert "✘" not in out and out.rstrip().endswith("all checks passed")
    for name in ("config", "store", "admin token", "upstream upstox", "upstream kotak"):
        assert f"✔ {name}:" in out
    assert "✔ clock vs upstox:" in out and "✔ instrument master:" in out
    assert "✔ listener: http on 127.0.0.1:8080 (loopback only)" in out


async def test_an_upstream_that_is_down_is_named_and_the_exit_is_non_zero(
    paper: TestServer, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, base(paper))
    path.write_text(path.read_text().replace(f'kotak = "{base(paper)}"', f'kotak = "{down}"'))

    code, out = await run_doctor(path)

    assert code == 1
    assert f"✘ upstream kotak: {down}: TCP connect failed" in out
    assert "→ check upstream.kotak" in out
    assert "✔ upstream upstox:" in out
    assert out.rstrip().endswith("1 check(s) failed")


async def test_a_named_host_that_is_down_is_named_by_its_config_key(
    paper: TestServer, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, base(paper))
    path.write_text(
        path.read_text().replace("[upstream]\n", f'[upstream]\nkotak_login = "{down}"\n')
    )

    code, out = await run_doctor(path)

    assert code == 1
    assert f"✘ upstream kotak_login: {down}: TCP connect failed" in out
    assert "→ check upstream.kotak_login" in out
    assert "✔ upstream kotak:" in out and "✔ upstream upstox:" in out


async def test_a_config_that_does_not_load_fails(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[server]\nport = 'x'\n")
    code, out = await run_doctor(path)
    assert code == 1 and "✘ config: server.port must be an integer" in out


def config_of(path: Path) -> Config:
    return load_config(path, {})


async def test_a_clock_off_by_more_than_2_s_fails(paper: TestServer, tmp_path: Path) -> None:
    config = config_of(write_config(tmp_path, base(paper)))
    checks = await diagnose(config, wall=lambda: time.time() + 10)
    assert failed(checks) == ["clock vs upstox", "clock vs kotak"]
    # the Date header has whole seconds: the offset seen is 10 to 11 s
    assert re.search(r"clock is \+1[01]\.\d s from", render(checks)), render(checks)
    assert "set-ntp" in render(checks)


async def test_a_stale_instrument_master_fails(paper: TestServer, tmp_path: Path) -> None:
    config = config_of(write_config(tmp_path, base(paper)))
    old = time.time() - 2 * 24 * 3600
    os.utime(config.instruments.files[0], (old, old))
    checks = await diagnose(config)
    assert failed(checks) == ["instrument master"]
    assert "48.0 h old" in render(checks)


async def test_the_shipped_sample_is_fine_only_for_the_paper_broker(
    paper: TestServer, tmp_path: Path
) -> None:
    real = load_config(None, {"GATEWAY_UPSTREAM_UPSTOX": base(paper)})
    assert failed(await check_only(real, "instrument master")) == ["instrument master"]
    embedded = load_config(None, {})
    assert failed(await check_only(embedded, "instrument master")) == []


async def test_instrument_urls_are_the_gateways_to_download(paper: TestServer) -> None:
    env = {
        "GATEWAY_UPSTREAM_UPSTOX": base(paper),
        "GATEWAY_INSTRUMENTS_URLS": "https://assets.example/complete.json.gz",
    }
    [check] = await check_only(load_config(None, env), "instrument master")
    assert check.ok
    assert "downloaded at start and daily at 08:00" in render([check])


async def check_only(config: Config, name: str) -> list[Check]:
    return [check for check in await diagnose(config) if check.name == name]


@pytest.mark.parametrize(
    ("extra", "name", "says"),
    [
        ({"host": "0.0.0.0"}, "listener", "without TLS"),
        ({"token": ""}, "admin token", "admin.token is empty"),
    ],
)
async def test_an_exposed_listener_or_a_missing_admin_token_fails(
    paper: TestServer, tmp_path: Path, extra: dict[str, str], name: str, says: str
) -> None:
    checks = await diagnose(config_of(write_config(tmp_path, base(paper), **extra)))
    assert failed(checks) == [name]
    assert says in render(checks)


async def test_the_store_is_opened_when_it_exists_and_never_created(
    paper: TestServer, tmp_path: Path
) -> None:
    config = config_of(write_config(tmp_path, base(paper)))
    db = tmp_path / "gateway.db"
    assert failed(await check_only(config, "store")) == []
    assert not db.exists()
    db.write_text("not a database")
    [broken] = await check_only(config, "store")
    assert not broken.ok and "store.url" in broken.fix
    missing_dir = load_config(None, {"GATEWAY_STORE_URL": f"sqlite:///{tmp_path}/no/such.db"})
    [nowhere] = await check_only(missing_dir, "store")
    assert not nowhere.ok and "create" in nowhere.fix


async def egress_store(config: Config, addresses: dict[str, str]) -> None:
    """Accounts with these egress addresses, written straight to the store (as if the host had
    lost an address since it was set: the admin API would refuse a missing one today)."""
    from datetime import UTC, datetime

    from gateway.app import create_store
    from gateway.stores.base import Account

    store = create_store(config)
    await store.start()
    try:
        for user_id, address in addresses.items():
            await store.create_account(Account(user_id, user_id, datetime.now(UTC)))
            assert await store.set_egress(user_id, address)
    finally:
        await store.close()


async def test_egress_addresses_this_host_has_reach_every_upstream(
    paper: TestServer, tmp_path: Path
) -> None:
    config = config_of(write_config(tmp_path, base(paper)))
    await egress_store(config, {"E1": "127.0.0.2", "E2": "127.0.0.3"})

    checks = [c for c in await diagnose(config) if c.name.startswith("egress")]

    assert [c.name for c in checks] == [
        "egress 127.0.0.2",
        "egress 127.0.0.2 → upstox",
        "egress 127.0.0.2 → kotak",
        "egress 127.0.0.3",
        "egress 127.0.0.3 → upstox",
        "egress 127.0.0.3 → kotak",
    ]
    assert all(c.ok for c in checks), render(checks)


async def test_an_egress_address_the_host_lacks_is_named_and_fails(
    paper: TestServer, tmp_path: Path
) -> None:
    path = write_config(tmp_path, base(paper))
    await egress_store(config_of(path), {"E1": "127.0.0.2", "E2": "192.0.2.77"})

    code, out = await run_doctor(path)

    assert code == 1
    assert "✘ egress 192.0.2.77: 192.0.2.77 is an account's egress address but this host" in out
    assert "✔ egress 127.0.0.2 → upstox:" in out
    assert out.rstrip().endswith("1 check(s) failed")


async def test_no_egress_address_is_the_default_route(paper: TestServer, tmp_path: Path) -> None:
    [check] = await check_only(config_of(write_config(tmp_path, base(paper))), "egress")
    assert check.ok and "default route" in check.detail
