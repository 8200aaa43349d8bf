"""The playlist-encoder commands end to end on a small demo catalog: train, embed, probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from pipelines.cli import app
from recsys.catalog import db
from recsys.catalog.schema import ModelVersion, PipelineRun
from recsys.models.playlist_seq2seq_store import load_encoder_file


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECSYS_DATABASE_URL", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    result = CliRunner().invoke(
        app, ["demo", "--playlists", "150", "--audio-clips", "0", "--video-clips", "0"]
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "data"


@pytest.mark.slow
def test_train_embed_probe(demo_env: Path) -> None:
    runner = CliRunner()
    threads = torch.get_num_threads()
    try:
        trained = runner.invoke(
            app,
            [
                "train",
                "playlist-encoder",
                "--epochs",
                "1",
                "--hidden",
                "8",
                "--embed-dim",
                "8",
                "--negatives",
                "0",
                "--min-count",
                "1",
                "--json",
            ],
        )
    finally:
        torch.set_num_threads(threads)
    assert trained.exit_code == 0, trained.output
    report = json.loads(trained.output[trained.output.index("{") :])
    assert report["playlists"] == 150 and report["epochs"] == 1
    engine = db.make_engine(f"sqlite:///{demo_env / 'catalog.db'}")
    with db.session_scope(engine) as session:
        version = session.query(ModelVersion).filter_by(kind="seq2seq").one()
        run = session.query(PipelineRun).filter_by(job="train playlist-encoder").one()
        assert version.kind == "seq2seq" and version.params["label"] == "seq2seq-gru-uni"
        assert run.status == "done" and version.metrics["epochs"] == 1
        path = Path(version.path)
    assert path.is_file()

    embedded = runner.invoke(app, ["embed", "playlists", "--model", "seq2seq", "--json"])
    assert embedded.exit_code == 0, embedded.output
    summary = json.loads(embedded.output)
    frame = pl.read_parquet(summary["playlists_path"])
    assert frame.height == 150 and summary["dim"] == 8
    assert summary["tracks"] == len(load_encoder_file(path, device="cpu").vocab.track_ids)
    encoder = load_encoder_file(path, device="cpu")
    ids = frame["playlist_id"].to_list()[:3]
    from pipelines.train.playlist_encoder import load_playlists

    data = load_playlists(engine)
    expected = encoder.embed([data.playlists[data.playlist_ids.index(i)] for i in ids])
    # float32: a playlist embedded in another batch may differ in the last bits
    np.testing.assert_allclose(np.stack(frame["vector"].to_numpy()[:3]), expected, rtol=1e-5, atol=1e-6)

    # The same vectors are served from the vector store, beside the catalog payloads.
    assert set(summary["vector_store"]) == {"playlists.seq2seq", "tracks.seq2seq"}
    from recsys.config import Settings
    from recsys.vectorstore import open_store

    with open_store(Settings()) as store:
        assert store.count("playlists", vector="seq2seq") == 150
        stored = {r.id: r for r in store.retrieve("playlists", ids, with_vectors=True)}
        for i, vector in zip(ids, expected, strict=True):
            got = np.asarray(stored[i].vectors["seq2seq"])
            assert np.dot(got, vector) / (np.linalg.norm(got) * np.linalg.norm(vector)) > 0.9999
        assert stored[ids[0]].payload["playlist_id"] == ids[0]

    # The continuation serves the encoder's nearest playlists as a method of its own.
    continued = runner.invoke(
        app, ["recommend", "continue", "--playlist", "1", "--n", "5", "--method", "seq2seq", "--json"]
    )
    assert continued.exit_code == 0, continued.output
    recs = json.loads(continued.output)
    assert len(recs) == 5 and all(r["sources"] == ["seq2seq"] and r["reason"] for r in recs)

    out = demo_env / "probing.json"
    probed = runner.invoke(app, ["evaluate", "probing", "--folds", "3", "--json", str(out)])
    assert probed.exit_code == 0, probed.output
    table = json.loads(out.read_text())
    assert set(table["encoders"]) == {"seq2seq-gru-uni", "sif", "mean-als", "random"}
    assert len(table["not_probed"]) == 3  # the variants not trained here are named
    assert table["encoders"]["seq2seq-gru-uni"]["order-halves"]["n"] > 100
    assert table["encoders"]["sif"]["order-swap"]["accuracy"] <= 0.6  # a bag cannot see order


def test_embed_unknown_model_is_one_clear_line(demo_env: Path) -> None:
    result = CliRunner().invoke(app, ["embed", "playlists", "--model", "nope"])
    assert result.exit_code == 1
    assert "unknown playlist encoder 'nope'" in result.output


def test_embed_without_training_says_what_to_run(demo_env: Path) -> None:
    result = CliRunner().invoke(app, ["embed", "playlists", "--model", "seq2seq"])
    assert result.exit_code == 1
    assert "recsys train playlist-encoder" in result.output
