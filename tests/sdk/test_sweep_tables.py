"""The sweep's tables against the installed SDKs and the README."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from . import kotak_table, upstox_table
from .sweep_tables import README_HEADING, Expect, Row, kotak_methods, readme_section, upstox_methods

pytestmark = pytest.mark.sdk

README = Path(__file__).resolve().parents[2] / "README.md"
TABLES = [
    pytest.param(upstox_table.ROWS, upstox_methods, id="upstox"),
    pytest.param(kotak_table.ROWS, kotak_methods, id="kotak"),
]


@pytest.mark.parametrize(("rows", "methods"), TABLES)
def test_the_table_has_one_row_for_every_public_method_of_the_installed_sdk(
    rows: list[Row], methods: Callable[[], set[str]]
) -> None:
    installed = methods()
    names = [row.name for row in rows]

    assert len(names) == len(set(names)), "a method has two rows"
    assert sorted(installed - set(names)) == [], "SDK methods with no row: add them to the table"
    assert sorted(set(names) - installed) == [], "rows for methods the SDK does not have"


@pytest.mark.parametrize("row", upstox_table.ROWS + kotak_table.ROWS, ids=lambda r: r.name)
def test_each_row_says_how_to_call_it_or_why_not(row: Row) -> None:
    if row.expect is Expect.SKIP:
        assert row.call is None
        assert len(row.reason) > 20, "a skipped method needs a written reason"
        return
    assert row.call is not None
    assert row.reason == ""
    assert (row.convert is not None) == (row.expect is Expect.CONVERTED)
    assert (row.check is not None) == (row.expect is Expect.GATEWAY)
    assert not row.public or row.expect is Expect.SAME


def test_the_readme_lists_every_sdk_call_as_the_tables_say() -> None:
    text = README.read_text().splitlines()
    start = text.index(README_HEADING)
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))

    assert text[start:end] == readme_section()
