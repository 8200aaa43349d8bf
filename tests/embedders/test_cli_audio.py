"""The audio commands end to end on embedded defaults (SQLite file, Qdrant Edge directory)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from recsys.embedders import checkpoints
from tests.embedders.conftest import write_mert_checkpoint

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    for name in ("RECSYS_DATABASE_URL", "RECSYS_VECTOR_STORE", "RECSYS_AUDIO_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_demo_audio_embed_again_and_similar(data_dir: Path) -> None:
    out = invoke("embed", "demo-audio", "--clips-per-style", "2", "--seconds", "3")
    assert "8 clip(s)" in out and "embedded 8" in out
    again = json.loads(invoke("embed", "audio", "--encoder", "dsp", "--json"))
    assert again["embedded"] == 0 and again["pending"] == 0
    similar = json.loads(
        invoke("recommend", "similar", "--track", "1", "--by", "audio_dsp", "--n", "3", "--json")
    )
    assert len(similar) == 3 and similar[0]["track_id"] != 1
    assert similar[0]["genres"] == ["raga-drone"]  # track 1 is the first raga-drone clip
    only = json.loads(
        invoke("recommend", "similar", "--track", "1", "--by", "audio_dsp", "--culture", "turkish", "--json")
    )
    assert only and all(t["cultures"] == ["turkish"] for t in only)


def test_culturemert_without_weights_fails_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "_reachable", lambda host, timeout=3.0: False)
    invoke("db", "upgrade")
    result = runner.invoke(app, ["embed", "audio", "--encoder", "culturemert"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model ntua-slp/CultureMERT-95M@main is not in")


def test_models_merge(tmp_path: Path, data_dir: Path) -> None:
    for name, seed in (("base", 1), ("greek", 2), ("indian", 3)):
        write_mert_checkpoint(tmp_path / name, seed=seed)
    out = json.loads(
        invoke(
            "models",
            "merge",
            "--base",
            str(tmp_path / "base"),
            "--culture",
            str(tmp_path / "greek"),
            "--culture",
            str(tmp_path / "indian"),
            "--lambda",
            "0.3",
            "--out",
            str(tmp_path / "ta"),
        )
    )
    assert out["lambda"] == 0.3 and len(out["cultures"]) == 2
    assert (tmp_path / "ta" / "model.safetensors").is_file() and (tmp_path / "ta" / "config.json").is_file()
