"""An account's algo id and algo name (SPEC §8): the headers every forwarded order carries.

Under the SEBI retail algo framework each API order is tagged with the exchange-approved algo
id (``X-Algo-Id``; the exchange's generic ``99999`` by default) and, for Upstox, the user's own
registered algo name (``X-Algo-Name``).  Both are configured once (``rules.algo_id``,
``rules.algo_name``) and may be set per account by the operator:

- an update names ``algo_id``, ``algo_name`` or both; a key left out keeps the stored value,
  ``null`` clears it so the configured default applies again; any other key is refused;
- a value is sent upstream as a header verbatim, so it is checked once, when stored: printable
  ASCII (0x20-0x7E, what an HTTP header carries safely), 1 to 64 characters, no leading or
  trailing space (a header parser would strip it).  A control character (CR, LF, NUL, TAB,
  DEL, …) would split or corrupt the header: refused, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rules.decisions import Reason, Refused

__all__ = ["FIELDS", "MAX_LENGTH", "AlgoUpdate", "check_algo_value", "parse_algo_update"]

FIELDS = ("algo_id", "algo_name")
MAX_LENGTH = 64


def check_algo_value(name: str, value: object) -> str:
    """One algo id or name, or Refused(BAD_REQUEST) naming the field and what is wrong."""
    if not isinstance(value, str):
        raise Refused(Reason.BAD_REQUEST, f"{name} must be a string, or null to clear it")
    if not 0 < len(value) <= MAX_LENGTH:
        raise Refused(
            Reason.BAD_REQUEST,
            f"{name} must be 1 to {MAX_LENGTH} characters, got {len(value)}",
        )
    for char in value:
        if not 0x20 <= ord(char) <= 0x7E:
            raise Refused(
                Reason.BAD_REQUEST,
                f"{name} must be printable ASCII; it contains U+{ord(char):04X}",
            )
    if value.strip(" ") != value:
        raise Refused(Reason.BAD_REQUEST, f"{name} must not start or end with a space")
    return value


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    """The fields an update gives: a string sets one, None clears it; absent ones stay."""

    values: Mapping[str, str | None]

    def applied_to(
        self, algo_id: str | None, algo_name: str | None
    ) -> tuple[str | None, str | None]:
        """The account's (algo_id, algo_name) after this update."""
        return self.values.get("algo_id", algo_id), self.values.get("algo_name", algo_name)


def parse_algo_update(body: object) -> AlgoUpdate:
    """``{"algo_id"?, "algo_name"?}`` as the admin API receives it."""
    if not isinstance(body, dict):
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"algo_id"?: …, "algo_name"?: …}')
    unknown = sorted(str(key) for key in body if key not in FIELDS)
    if unknown:
        raise Refused(
            Reason.BAD_REQUEST,
            f"unknown field(s) {', '.join(unknown)}: an account's algo is algo_id and algo_name",
        )
    if not body:
        raise Refused(Reason.BAD_REQUEST, "give algo_id, algo_name or both")
    return AlgoUpdate(
        {
            name: None if value is None else check_algo_value(name, value)
            for name, value in body.items()
        }
    )
