from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_kotak_file_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """neo_api_client opens ``logs/neo-api-client.log`` in the cwd when first imported
    (``logger.py`` reads NEO_LOG_FILE_ENABLED then), whichever SDK test imports it first."""
    monkeypatch.setenv("NEO_LOG_FILE_ENABLED", "false")
