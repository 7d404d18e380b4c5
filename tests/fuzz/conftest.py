"""Hypothesis profiles for the fuzz suite.

``ci`` (the default, used by ``make test``): derandomized, so every run draws the same examples
from a seed derived from each test's name; a bounded count keeps the suite under a minute.
``fuzz`` (``make fuzz``): random seeds, many examples, no deadline, failures saved to
``.hypothesis/`` so the next run replays them first.  Pick one with ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The app tests reuse one gateway across a test's examples on purpose (a fresh gateway per
# example would cost more than the example); each example checks its own effects.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=_SHARED,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=_SHARED,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
