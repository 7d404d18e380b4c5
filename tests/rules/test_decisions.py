from __future__ import annotations

import pytest

from rules.decisions import Reason, Refuse, Refused


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_an_error_status(reason: Reason) -> None:
    assert 400 <= reason.status < 600


def test_refused_carries_a_refuse() -> None:
    exc = Refused(Reason.RATE_LIMITED, "slow down", retry_after=0.25)
    assert str(exc) == "slow down"
    assert exc.refusal == Refuse(Reason.RATE_LIMITED, "slow down", 0.25)
    assert exc.refusal.status == 429
