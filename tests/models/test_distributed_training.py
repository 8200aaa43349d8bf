"""Data-parallel training of the playlist encoder: two CPU processes (ddp_spawn) each train on their own
share of the playlists, and the saved model loads and still separates the planted order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.ingest.mpd import ingest_mpd
from pipelines.train.playlist_encoder import train_playlist_encoder
from recsys.catalog import db
from recsys.catalog.schema import ModelVersion, PipelineRun
from recsys.evaluation.probing import linear_probe
from recsys.models.playlist_seq2seq_store import find_encoder, load_encoder, save_encoder_version
from recsys.models.playlist_seq2seq_training import fit_seq2seq
from recsys.models.track_vocab import BucketDataset
from tests.models.conftest import motif_playlists, tiny_config


class RowsSeen(L.Callback):
    """Writes, per rank, the training sequences of every batch it trained on (one list per epoch)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.epochs: list[list[int]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append([])

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.epochs[-1] += batch.rows.tolist()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self.folder / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, "epochs": self.epochs}))


def test_buckets_are_dealt_evenly_without_repeats() -> None:
    sequences = [[4] * n for n in range(1, 121)]
    data = BucketDataset(
        sequences, 24, seed=1, shards=2
    )  # 5 batches of 24 would leave one rank a batch short
    assert len(data) == 6 and all(len(rows) == 20 for rows in data.indices)
    assert sorted(i for rows in data.indices for i in rows) == list(range(120))
    assert len(BucketDataset(sequences, 24, seed=1)) == 5  # one process: the batches as before
    tiny = BucketDataset([[5], [6], [7]], 1, shards=2)  # batches of one cannot split 3 evenly: 2 batches
    assert sorted(len(rows) for rows in tiny.indices) == [1, 2]
    with pytest.raises(ValueError, match="cannot be shared by 4 processes"):
        BucketDataset([[5], [6], [7]], 1, shards=4)


@pytest.mark.slow
def test_two_processes_see_disjoint_playlists_and_the_saved_encoder_loads(tmp_path: Path) -> None:
    playlists, labels = motif_playlists(60)  # 120 playlists, no windows: sequence i is playlist i
    config = tiny_config(
        epochs=8, lr=1e-2, hidden=32, batch_size=12, strategy="ddp_spawn", devices=2, num_nodes=1
    )
    seen = tmp_path / "seen"
    seen.mkdir()
    encoder, report = fit_seq2seq(playlists, config, device="cpu", callbacks=[RowsSeen(seen)])

    ranks = [json.loads((seen / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert len(ranks[0]["epochs"]) == len(ranks[1]["epochs"]) == 8
    for first, second in zip(ranks[0]["epochs"], ranks[1]["epochs"], strict=True):
        assert len(first) == len(set(first)) == 60 and len(second) == len(set(second)) == 60
        assert not set(first) & set(second)
        assert set(first) | set(second) == set(range(len(playlists)))
    # The deal changes with the epoch (the distributed sampler reshuffles the batches).
    assert len({tuple(sorted(rows)) for rows in ranks[0]["epochs"]}) > 1
    # The calling process gets back the epochs' losses (averaged over the ranks) and the weights.
    assert report.epochs == 8 and report.world_size == 2 and report.strategy == "ddp_spawn"
    assert report.epoch_losses[-1] < report.epoch_losses[0]

    engine = db.make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    db.upgrade(engine)
    saved = save_encoder_version(
        engine,
        tmp_path,
        encoder,
        params={"label": config.label},
        data_fingerprint="planted",
        metrics=report.as_dict(),
    )
    loaded = load_encoder(find_encoder(engine, label=config.label), device="cpu")
    assert loaded.config.strategy == "ddp_spawn" and loaded.config.world_size == 2
    vectors = loaded.embed(playlists)
    assert vectors.shape == (120, 32) and np.isfinite(vectors).all()
    np.testing.assert_array_equal(vectors, encoder.embed(playlists))
    assert linear_probe(vectors, labels, folds=5).accuracy >= 0.9  # the planted order is still recovered
    assert saved.path.is_file()
    engine.dispose()


@pytest.mark.slow
def test_a_worker_rank_trains_but_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the other ranks of a ``ddp`` run do (Lightning runs the command again with LOCAL_RANK set)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    db.upgrade(engine)
    ingest_mpd(engine, generate_mpd(tmp_path / "mpd", DemoConfig(playlists=30, seed=2)))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert train_playlist_encoder(engine, tmp_path, tiny_config(epochs=1), device="cpu") is None
    monkeypatch.delenv("LOCAL_RANK")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ModelVersion)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(PipelineRun)).scalar_one() == 0
    assert not (tmp_path / "models").exists()
    result = train_playlist_encoder(engine, tmp_path, tiny_config(epochs=1), device="cpu")
    assert result is not None
    row = find_encoder(engine)
    assert row.params is not None
    assert (row.params["strategy"], row.params["world_size"]) == ("auto", 1)
    engine.dispose()
