"""The CLI as a newcomer meets it: the README's commands typed into a plain shell after
`make run`, where the admin token is looked for, plain-language help, and a busy port."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import cli, cli_args

from ..conftest import GatewayFactory
from ..process import ROOT, clean_env, free_port, start, wait_until_up

DEV_CONFIG = "deploy/gateway.dev.toml"


def cli_block() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- cli -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no CLI block"
    return match.group(1)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[int]:
    """`make run`'s gateway (deploy/gateway.dev.toml, no GATEWAY_ADMIN_TOKEN set) on a free
    port; the port goes through GATEWAY_SERVER_PORT, which the CLI reads as the server does."""
    port = free_port()
    env = clean_env(GATEWAY_SERVER_PORT=str(port), GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/cli.db")
    process = await start(
        env,
        "--config",
        str(ROOT / DEV_CONFIG),
        "serve",
        "--paper-port",
        str(free_port()),
        cwd=tmp_path,
    )
    try:
        await wait_until_up(process, f"http://127.0.0.1:{port}/readyz")
        yield port
    finally:
        process.terminate()
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()


async def shell(script: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=ROOT,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def documents(output: str) -> list[Any]:
    """The JSON documents the commands printed, one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while output[at:].strip():
        at += len(output[at:]) - len(output[at:].lstrip())
        value, at = decoder.raw_decode(output, at)
        found.append(value)
    return found


async def test_the_readme_cli_commands_work_as_written_after_make_run(served: int) -> None:
    code, out, err = await shell(cli_block(), GATEWAY_SERVER_PORT=str(served))

    assert code == 0, err + out
    added, _, listed, app, changed, shown, family, audit = documents(out)
    assert added["user_id"] == "EF9012"
    assert [a["user_id"] for a in listed["data"]] == ["EF9012", "GH3456"]
    assert app["api_key"] and app["api_secret"]
    assert changed["data"]["primary_ip"] == shown["data"]["primary_ip"] == "203.0.113.7"
    assert [m["user_id"] for m in family["data"]["members"]] == ["GH3456"]
    override = next(r for r in audit["data"] if r["decision"] == "admin_ip_override")
    # typed values: an unset IP is null, never the string "None"
    assert override["original"] == {"primary_ip": None, "secondary_ip": None}
    assert override["rewritten"] == {"primary_ip": "203.0.113.7", "secondary_ip": None}


async def test_the_admin_token_sources_and_what_a_401_says(served: int, tmp_path: Path) -> None:
    base = f".venv/bin/order-gateway --url http://127.0.0.1:{served}"
    port = {"GATEWAY_SERVER_PORT": str(served)}
    wrong_file = tmp_path / "wrong.toml"
    wrong_file.write_text('[admin]\ntoken = "not-it"\n')

    by_flag = await shell(f"{base} --admin-token dev-admin-token accounts list")
    by_env = await shell(f"{base} accounts list", GATEWAY_ADMIN_TOKEN="dev-admin-token")
    by_file = await shell(f".venv/bin/order-gateway --config {DEV_CONFIG} accounts list", **port)
    assert [code for code, _, _ in (by_flag, by_env, by_file)] == [0, 0, 0]

    _, _, flag_err = await shell(f"{base} --admin-token nope accounts list")
    _, _, env_err = await shell(f"{base} accounts list", GATEWAY_ADMIN_TOKEN="nope")
    _, _, file_err = await shell(f"{base} --config {wrong_file} accounts list")
    code, _, none_err = await shell(f"{base} accounts list")

    assert "refused the admin token from --admin-token" in flag_err
    assert "refused the admin token from GATEWAY_ADMIN_TOKEN" in env_err
    assert f"refused the admin token from admin.token in {wrong_file}" in file_err
    for err in (flag_err, env_err, file_err):
        assert "401" in err and cli.WHERE_THE_CLI_LOOKS in err
    assert code == 1
    assert none_err.strip() == (
        "order-gateway: no admin token found (no --config was given); the CLI looks in"
        f" {cli.WHERE_THE_CLI_LOOKS}"
    )


def _leaves(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, Any]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _leaves(child, f"{name} {sub}")


def test_help_is_plain_language_for_every_command_and_argument() -> None:
    parser = cli_args.parser()
    text = parser.format_help()
    assert "``" not in text and ":class:" not in text
    for name, command in _leaves(parser, "order-gateway"):
        assert command.description, f"{name} has no description"
        for action in command._actions:
            assert action.help, f"{name}: {action.dest} has no help text"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def run(*args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=ROOT,
        env=clean_env(**env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_a_busy_gateway_port_is_one_line_and_exit_2(busy_port: int, tmp_path: Path) -> None:
    code, err = await run(
        "--config",
        DEV_CONFIG,
        "serve",
        "--paper-port",
        str(free_port()),
        GATEWAY_SERVER_PORT=str(busy_port),
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/busy.db",
    )
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"order-gateway: cannot listen on 127.0.0.1:{busy_port}: the address is in use; set"
        " server.port (or GATEWAY_SERVER_PORT) to a free port, or stop what is listening there"
    )


async def test_a_busy_paper_broker_port_is_one_line_and_exit_2(
    busy_port: int, tmp_path: Path
) -> None:
    embedded = await run(
        "--config",
        DEV_CONFIG,
        "serve",
        "--paper-port",
        str(busy_port),
        GATEWAY_SERVER_PORT=str(free_port()),
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/busy.db",
    )
    alone = await run("paper-broker", "--port", str(busy_port))

    for code, err in (embedded, alone):
        assert code == 2 and "Traceback" not in err
    assert embedded[1].splitlines()[-1] == (
        f"order-gateway: cannot start the embedded paper broker on 127.0.0.1:{busy_port}: the"
        " address is in use; pass `serve --paper-port N` with a free port (or configure an"
        " [upstream])"
    )
    assert (
        alone[1]
        .splitlines()[-1]
        .startswith(f"order-gateway: cannot start the paper broker on 127.0.0.1:{busy_port}: ")
    )
    assert alone[1].splitlines()[-1].endswith("; pass --port N with a free port")


async def test_an_unknown_route_through_the_gateway_is_a_404(served: int) -> None:
    """Issue 13: `GET /v2/nope` answered 200 through the paper broker's catch-all."""
    script = """
    GW=http://127.0.0.1:$PORT; H="Authorization: Bearer dev-admin-token"
    curl -sf -X POST $GW/admin/v1/accounts -H "$H" -d '{"user_id":"NF0001","name":"N"}' >/dev/null
    APP=$(curl -sf -X POST $GW/admin/v1/accounts/NF0001/apps -H "$H")
    TOKEN=$(curl -sf -X POST $GW/gateway/v1/session -d "$APP" \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["access_token"])')
    curl -s -o /dev/null -w '%{http_code}\\n' $GW/v2/nope -H "Authorization: Bearer $TOKEN"
    curl -s -o /dev/null -w '%{http_code}\\n' $GW/v2/user/profile -H "Authorization: Bearer $TOKEN"
    """
    code, out, err = await shell(script, PORT=str(served))
    assert code == 0, err
    assert out.split() == ["404", "200"]


async def test_a_gateway_without_an_admin_token_is_named_as_the_cause(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(admin_token="")
    argv = ["--url", gw.url, "--admin-token", "anything", "accounts", "list"]
    with pytest.raises(SystemExit) as failed:
        await asyncio.to_thread(cli.main, argv)
    message = str(failed.value.code)
    assert message.startswith("GET /accounts: 403 ")
    assert message.endswith(
        f"the gateway at {gw.url} has no admin.token set, so its admin API is off"
    )
