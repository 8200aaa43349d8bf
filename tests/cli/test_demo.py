"""The README's main job runs end to end on embedded defaults, and re-running it changes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]


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

    # ALS was trained on the demo playlists, so a new user's first continuation works
    trained = re.search(
        r"^als model (\w+): trained on 300 playlists × [\d,]+ tracks", first.output, flags=re.M
    )
    assert trained is not None, first.output
    assert als_versions() == [trained.group(1)]
    lines = continue_playlist_one(embedded_env)
    assert len(lines) == 5, lines
    for rank, line in enumerate(lines, start=1):
        match = re.fullmatch(rf"\s*{rank}\. “.+” by .+  \[(.+)\]", line)
        assert match is not None and match.group(1).strip(), line
    assert any("similar taste (ALS)" in line for line in lines), lines

    again = runner.invoke(app, SMALL)
    assert again.exit_code == 0, again.output
    assert "music vectors: 0 embedded" in again.output
    assert f"als model {trained.group(1)}: already trained on these playlists" in again.output
    assert als_versions() == [trained.group(1)]
    assert json.loads(runner.invoke(app, ["catalog", "stats", "--json"]).output) == counts


def als_versions() -> list[str]:
    import sqlalchemy as sa

    from recsys.catalog import db
    from recsys.catalog.schema import ModelVersion
    from recsys.config import Settings

    engine = db.make_engine(Settings().catalog_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.select(ModelVersion.version).where(ModelVersion.kind == "als")).scalars()
            )
    finally:
        engine.dispose()


def continue_playlist_one(data_dir: Path) -> list[str]:
    """`recsys recommend continue --playlist 1 --n 5` in a process of its own, as a user would run it."""
    env = {**os.environ, "RECSYS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("RECSYS_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "recommend", "continue", "--playlist", "1", "--n", "5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


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
