"""An account's algo id and name (SPEC §8): what may be stored and sent as X-Algo-* headers."""

from __future__ import annotations

from typing import Any

import pytest

from rules.algo import MAX_LENGTH, AlgoUpdate, check_algo_value, parse_algo_update
from rules.decisions import Reason, Refused


@pytest.mark.parametrize(
    "value",
    ["99999", "A", "Momentum v2 (NSE)", "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"", "x" * MAX_LENGTH],
)
def test_printable_ascii_up_to_64_is_accepted(value: str) -> None:
    assert check_algo_value("algo_name", value) == value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("Mom\r\nX-Injected: 1", "algo_name must be printable ASCII; it contains U+000D"),
        ("Mom\nentum", "algo_name must be printable ASCII; it contains U+000A"),
        ("Mom\x00", "U+0000"),
        ("Mom\tentum", "U+0009"),
        ("Mom\x7f", "U+007F"),
        ("Mom\x1b[31m", "U+001B"),
        ("Momentüm", "U+00FC"),
        ("", "algo_name must be 1 to 64 characters, got 0"),
        ("x" * (MAX_LENGTH + 1), "got 65"),
        (" Momentum", "must not start or end with a space"),
        ("Momentum ", "must not start or end with a space"),
        (5, "algo_name must be a string, or null to clear it"),
        (True, "must be a string"),
        (["Momentum"], "must be a string"),
    ],
)
def test_refused_naming_the_field(value: object, says: str) -> None:
    with pytest.raises(Refused) as refused:
        check_algo_value("algo_name", value)
    assert refused.value.refusal.reason is Reason.BAD_REQUEST
    assert refused.value.refusal.status == 400
    assert says in refused.value.refusal.message


@pytest.mark.parametrize(
    ("body", "current", "after"),
    [
        ({"algo_id": "ALGO-7"}, ("OLD", "Old name"), ("ALGO-7", "Old name")),
        ({"algo_name": "Momentum"}, ("OLD", "Old name"), ("OLD", "Momentum")),
        ({"algo_id": "A1", "algo_name": "N1"}, (None, None), ("A1", "N1")),
        ({"algo_name": None}, ("OLD", "Old name"), ("OLD", None)),
        ({"algo_id": None, "algo_name": None}, ("OLD", "Old name"), (None, None)),
    ],
)
def test_an_update_sets_what_it_names_and_keeps_the_rest(
    body: dict[str, Any],
    current: tuple[str | None, str | None],
    after: tuple[str | None, str | None],
) -> None:
    assert parse_algo_update(body).applied_to(*current) == after


def test_an_update_holds_only_the_fields_it_gives() -> None:
    assert parse_algo_update({"algo_name": "M"}) == AlgoUpdate({"algo_name": "M"})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "the body must be"),
        ("Momentum", "the body must be"),
        (None, "the body must be"),
        ({}, "give algo_id, algo_name or both"),
        ({"algo_name": "M", "name": "x"}, "unknown field(s) name"),
        ({"X-Algo-Name": "M"}, "unknown field(s) X-Algo-Name"),
        ({"algo_id": "A\r\n"}, "algo_id must be printable ASCII"),
        ({"algo_id": "A", "algo_name": "B\x00"}, "algo_name must be printable ASCII"),
        ({"algo_id": 99999}, "algo_id must be a string"),
    ],
)
def test_bad_updates_are_refused(body: object, says: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_algo_update(body)
    assert refused.value.refusal.reason is Reason.BAD_REQUEST
    assert says in refused.value.refusal.message
