from __future__ import annotations

import pytest

from rules.decisions import Reason, Refuse, Refused, contended


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_an_error_status(reason: Reason) -> None:
    assert 400 <= reason.status < 600


def test_refused_carries_a_refuse() -> None:
    exc = Refused(Reason.RATE_LIMITED, "slow down", retry_after=0.25)
    assert str(exc) == "slow down"
    assert exc.refusal == Refuse(Reason.RATE_LIMITED, "slow down", 0.25)
    assert exc.refusal.status == 429


def test_contention_is_a_concurrent_update_naming_what_moved() -> None:
    refused = contended("p1's family")
    assert refused.refusal.reason is Reason.CONCURRENT_UPDATE
    assert refused.refusal.status == 409
    assert refused.refusal.message.startswith("p1's family kept changing")
