"""rules/ is sans-IO: no event loop, no network, no logging, no clock (STYLE §1, §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "rules"
FORBIDDEN_MODULES = frozenset(
    {"aiohttp", "asyncio", "uvloop", "orjson", "logging", "time", "gateway", "socket"}
)
FORBIDDEN_CALLS = frozenset(
    {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("time", "time")}
)
SOURCES = sorted(RULES.rglob("*.py"))


def violations(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"{name}.{node.func.attr}() at line {node.lineno}")
    return found


def test_the_package_is_scanned() -> None:
    names = {p.name for p in SOURCES}
    assert {"ip.py", "clientip.py", "registry.py", "sessions.py", "grid.py"} <= names
    assert {"ratelimit.py", "orders.py", "decisions.py", "types.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(RULES)))
def test_rules_module_is_pure(path: Path) -> None:
    assert violations(ast.parse(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import aiohttp.web",
        "import time",
        "import logging as log",
        "from time import monotonic",
        "from gateway.app import create_app",
        "from socket import socket",
        "import uvloop, orjson",
        "datetime.now()",
        "datetime.datetime.now(tz)",
        "dt.datetime.utcnow()",
        "date.today()",
        "time.time()",
    ],
)
def test_the_checker_catches(source: str) -> None:
    assert violations(ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime, time",
        "time(3, 30)",
        "import ipaddress",
        "from . import time",
        "now.astimezone(tz)",
        "f()(x)",
    ],
)
def test_the_checker_allows(source: str) -> None:
    assert violations(ast.parse(source)) == []
