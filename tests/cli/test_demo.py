"""The README's main job runs end to end on embedded defaults, and re-running it changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECSYS_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECSYS_VECTOR_STORE", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


SMALL = ["demo", "--playlists", "300", "--audio-clips", "1", "--video-clips", "40", "--video-epochs", "2"]


def test_demo_then_stats(embedded_env: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, SMALL)
    assert first.exit_code == 0, first.output
    assert (embedded_env / "catalog.db").is_file()
    # Every stage ran: demo audio embedded into the vector store, the video model trained and its music
    # embedded into the same collection (its `music` vector resized to the model's size on the way).
    from recsys.config import Settings
    from recsys.vectorstore import open_store

    with open_store(Settings()) as store:
        assert store.count("tracks", vector="audio_dsp") == 4
        embedded = re.search(r"music vectors: (\d+) embedded", first.output)
        assert embedded is not None and int(embedded.group(1)) >= 40
        assert store.count("tracks", vector="music") == int(embedded.group(1))
    assert (embedded_env / "trimodal" / "model.pt").is_file()
    stats = runner.invoke(app, ["catalog", "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    counts = json.loads(stats.output)
    assert set(counts) == {
        "playlists",
        "playlist_tracks",
        "tracks",
        "artists",
        "albums",
        "listens",
        "rejects",
        "feedback",
    }
    assert counts["playlists"] == 300 and counts["rejects"] == 0 and counts["feedback"] == 0
    assert counts["playlist_tracks"] >= 300 * 10
    assert counts["tracks"] > 1_600 + 4  # catalog tracks, demo audio clips, then the video soundtracks

    again = runner.invoke(app, SMALL)
    assert again.exit_code == 0, again.output
    assert "music vectors: 0 embedded" in again.output
    assert json.loads(runner.invoke(app, ["catalog", "stats", "--json"]).output) == counts


def test_commands_refuse_an_unmigrated_database(embedded_env: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "stats"])
    assert result.exit_code == 1
    assert "run `recsys db upgrade`" in result.output


def test_db_upgrade_and_status(embedded_env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["db", "status", "--json"]).output)
    assert status["up_to_date"] is True and status["revision"] == status["head"]
    assert "catalog.db" in status["database"]
