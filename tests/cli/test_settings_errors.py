"""An invalid setting is one line naming the variable, its value and the rule, exit 1, through the real command."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.config import load_settings
from recsys.errors import ConfigError
from tests.cli.child import one_line_error, recsys


@pytest.mark.parametrize(
    ("variable", "value", "args", "expected"),
    [
        ("RECSYS_BATCH_ROWS", "500", ["db", "upgrade"], "RECSYS_BATCH_ROWS=500: must be at least 1000"),
        (
            "RECSYS_QDRANT_TIMEOUT_S",
            "soon",
            ["catalog", "stats"],
            "RECSYS_QDRANT_TIMEOUT_S=soon: must be a whole number",
        ),
        ("RECSYS_LOG_LEVEL", "loud", ["db", "status"], "RECSYS_LOG_LEVEL=loud: must be one of DEBUG, INFO"),
        (
            "RECSYS_SPOTIFY_DEADLINE_S",
            "0",
            ["ingest", "spotify", "--track", "x"],
            "RECSYS_SPOTIFY_DEADLINE_S=0: must be more than 0",
        ),
    ],
)
def test_an_invalid_setting_is_one_line(
    tmp_path: Path, variable: str, value: str, args: list[str], expected: str
) -> None:
    result = recsys(*args, env={"RECSYS_DATA_DIR": str(tmp_path), variable: value})
    assert one_line_error(result).startswith(f"error: {expected}")
    assert not (tmp_path / "catalog.db").exists()  # nothing ran


def test_every_invalid_setting_is_named_and_a_secret_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_BATCH_ROWS", "5")
    monkeypatch.setenv("RECSYS_AUDIO_HOP_S", "-1.5")
    with pytest.raises(ConfigError) as caught:
        load_settings(spotify_client_secret=["hunter2"])
    message = str(caught.value)
    assert "\n" not in message
    assert "RECSYS_BATCH_ROWS=5: must be at least 1000" in message
    assert "RECSYS_AUDIO_HOP_S=-1.5: must be more than 0" in message
    assert "RECSYS_SPOTIFY_CLIENT_SECRET" in message and "hunter2" not in message
