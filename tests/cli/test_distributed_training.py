"""``--devices 2 --strategy ddp_spawn`` on the training commands, run as a user runs them: two CPU processes
train, one model is saved and recorded with its strategy and world size, and nothing of Lightning's
distributed banners reaches the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipelines.demo.video import SynthConfig, generate
from recsys.catalog import db
from recsys.catalog.schema import ModelVersion, PipelineRun
from recsys.models.playlist_seq2seq_store import find_encoder, load_encoder
from recsys.models.trimodal_bundle import load_bundle, model_file, record_bundle
from tests.cli.child import recsys

TWO = ["--devices", "2", "--strategy", "ddp_spawn"]


@pytest.mark.slow
def test_playlist_encoder_on_two_processes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"RECSYS_DATA_DIR": str(data), "RECSYS_DEVICE": "cpu"}
    demo = recsys("demo", "--playlists", "120", "--audio-clips", "0", "--video-clips", "0", env=env)
    assert demo.returncode == 0, demo.stderr
    trained = recsys(
        "train", "playlist-encoder", "--epochs", "1", "--hidden", "8", "--embed-dim", "8",
        "--negatives", "0", "--min-count", "1", *TWO, env=env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""  # no "Initializing distributed", banners or warnings from the workers
    assert len(trained.stdout.splitlines()) == 1 and "2 processes (ddp_spawn)" in trained.stdout
    engine = db.make_engine(f"sqlite:///{data / 'catalog.db'}")
    with db.session_scope(engine) as session:
        versions = session.query(ModelVersion).filter_by(kind="seq2seq").all()
        runs = session.query(PipelineRun).filter_by(job="train playlist-encoder").all()
        assert len(versions) == 1 and [r.status for r in runs] == ["done"]
        params, metrics = versions[0].params or {}, versions[0].metrics or {}
    assert (params["strategy"], params["devices"], params["num_nodes"], params["world_size"]) == (
        "ddp_spawn", 2, 1, 2,
    )  # fmt: skip
    assert metrics["world_size"] == 2 and metrics["epochs"] == 1
    assert len(list((data / "models" / "playlist_seq2seq").iterdir())) == 1
    encoder = load_encoder(find_encoder(engine), device="cpu")
    assert encoder.embed([[1, 2, 3]]).shape == (1, 8)
    engine.dispose()


@pytest.mark.slow
def test_trimodal_on_two_processes(tmp_path: Path) -> None:
    videos, data = tmp_path / "videos", tmp_path / "data"
    generate(videos, SynthConfig(clips=16, seconds=2.0))
    env = {"RECSYS_DATA_DIR": str(data), "RECSYS_DEVICE": "cpu"}
    trained = recsys("train", "trimodal", "--videos", str(videos), "--epochs", "2", *TWO, "--json", env=env)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""
    report = json.loads(trained.stdout)
    assert report["training"] == {"strategy": "ddp_spawn", "devices": 2, "num_nodes": 1, "world_size": 2}
    path = model_file(data)
    assert sorted(p.name for p in path.parent.iterdir() if p.is_file()) == ["features.npz", "model.pt"]
    bundle = load_bundle(path)
    assert bundle.version == report["version"] and bundle.training == report["training"]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    db.upgrade(engine)
    record_bundle(engine, bundle, path)
    with db.session_scope(engine) as session:
        row = session.query(ModelVersion).filter_by(kind="trimodal").one()
        assert (row.params or {})["training"]["world_size"] == 2
    engine.dispose()
    music = bundle.model.embed_music(torch.randn(2, 5, bundle.model.config.music_dim))
    assert music.shape == (2, bundle.model.config.embed_dim)
