"""The user documentation keeps up with the code: every route the app registers is in
docs/api.md, with every refusal's codes; the deploy samples load; the systemd unit verifies."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.config import load_config
from gateway.dialects import kotak, upstox
from rules.decisions import Reason, Refuse

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.md").read_text()


def _shape(path: str) -> str:
    # Placeholder names may differ between code and prose ({id} / {order_id}): compare shapes.
    return re.sub(r"\{[^}]*\}", "{}", path)


def routes(app: web.Application) -> Iterator[tuple[str, str]]:
    for route in app.router.routes():
        yield route.method, route.resource.canonical if route.resource else ""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from routes(resource._app)


def registered() -> set[tuple[str, str]]:
    app = create_app(load_config(None, {}))
    found = set()
    for method, path in routes(app):
        # HEAD comes with every GET; the catch-alls ({tail}) are "every other path", below
        if method != "HEAD" and "{tail}" not in path:
            found.add((method, path))
    return found


def documented() -> set[tuple[str, str]]:
    return {
        (method, _shape(path))
        for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)", API)
    }


def test_every_registered_route_is_in_the_api_reference() -> None:
    found = registered()
    assert ("PUT", "/admin/v1/ltp") in found and ("POST", "/v2/order/place") in found
    missing = sorted(f"{m} {p}" for m, p in found if (m, _shape(p)) not in documented())
    assert missing == [], f"docs/api.md does not document: {missing}"
    assert "Every other `/v2/…` and `/v3/…` path" in API  # the catch-all


def test_every_refusal_is_in_the_error_table_with_its_codes() -> None:
    for reason in Reason:
        status = Refuse(reason, "").status
        row = f"| `{reason.name}` | {status} | `{upstox.CODES[reason]}` | {kotak.CODES[reason]} |"
        assert row in API, f"docs/api.md error table lacks {row}"


def test_the_readme_links_the_docs_and_not_the_missing_spec_path() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared/SPEC.md" not in readme
    assert "(docs/api.md)" in readme and "(docs/operations.md)" in readme


@pytest.mark.parametrize("sample", sorted(p.name for p in (ROOT / "deploy").glob("*.toml")))
def test_the_deploy_samples_load(sample: str) -> None:
    config = load_config(ROOT / "deploy" / sample, {})
    if sample != "gateway.dev.toml":  # production samples: TLS on, a public URL
        assert config.server.tls and config.server.public_url
        assert not config.upstream.embedded
    else:
        assert config.admin.token == "dev-admin-token"  # the token `make run` serves with


def test_the_real_broker_sample_names_the_brokers_hosts() -> None:
    config = load_config(ROOT / "deploy" / "gateway.real-broker.toml", {})
    assert config.upstream.upstox == "https://api.upstox.com"
    assert config.upstream.kotak == "https://mis.kotaksecurities.com"
    assert "https://api-hft.upstox.com" in (ROOT / "deploy/gateway.real-broker.toml").read_text()


UNIT = ROOT / "deploy" / "order-gateway.service"


def test_the_unit_sets_what_its_comments_promise() -> None:
    lines = set(UNIT.read_text().splitlines())
    for setting in (
        "KillMode=mixed",
        "User=order-gateway",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/order-gateway",
        "PrivateTmp=true",
    ):
        assert setting in lines


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point the install prefix at this checkout's venv
    executable = ROOT / ".venv" / "bin" / "order-gateway"
    if not executable.exists():
        pytest.skip(f"{executable} is not installed")
    unit = tmp_path / "order-gateway.service"
    unit.write_text(UNIT.read_text().replace("/opt/order-gateway/bin", str(executable.parent)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
