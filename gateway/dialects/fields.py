"""Strict field specs for JSON order bodies, shared by the JSON dialects.

Each known field has exactly one JSON type (a boolean is never a number), unknown fields are
refused rather than silently forwarded or dropped, and missing required fields are named.
A dialect adds its own value checks (positive quantities, …) after :func:`check_fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from rules.decisions import Reason, Refused

Check = Callable[[object], bool]
Spec = Mapping[str, tuple[Check, str, bool]]  # field -> (check, what it must be, required)


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    return is_int(v) or isinstance(v, Decimal)


def is_str(v: object) -> bool:
    return isinstance(v, str)


def is_bool(v: object) -> bool:
    return isinstance(v, bool)


def one_of(*values: str) -> Check:
    return lambda v: v in values


def check_fields(doc: object, spec: Spec, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise Refused(Reason.BAD_REQUEST, f"{where} must be a JSON object")
    for name, value in doc.items():
        if name not in spec:
            raise Refused(Reason.BAD_REQUEST, f"{where}: unknown field {name!r}")
        check, kind, _ = spec[name]
        if not check(value):
            raise Refused(Reason.BAD_REQUEST, f"{where}: {name} must be {kind}, got {value!r}")
    if len(doc) == len(spec):  # every key is known and keys are unique: nothing is missing
        return doc
    missing = [name for name, (_, _, required) in spec.items() if required and name not in doc]
    if missing:
        raise Refused(Reason.BAD_REQUEST, f"{where}: missing {', '.join(missing)}")
    return doc
