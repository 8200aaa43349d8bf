"""The training job records its model version and run on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.ingest.mpd import ingest_mpd
from pipelines.train.playlist_encoder import load_playlists, train_playlist_encoder
from recsys.catalog.schema import PipelineRun
from recsys.errors import NotFoundError
from recsys.models.playlist_seq2seq_store import find_encoder, load_encoder
from tests.models.conftest import tiny_config


@pytest.mark.slow
def test_train_records_and_reloads(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no playlists"):
        load_playlists(catalog_engine)
    ingest_mpd(catalog_engine, generate_mpd(tmp_path / "mpd", DemoConfig(playlists=60, seed=2)))
    data = load_playlists(catalog_engine)
    assert len(data.playlists) == 60 and len(data.fingerprint) == 16
    with pytest.raises(NotFoundError, match="recsys train playlist-encoder"):
        find_encoder(catalog_engine)
    result = train_playlist_encoder(catalog_engine, tmp_path, tiny_config(epochs=1), device="cpu")
    row = find_encoder(catalog_engine, label="seq2seq-gru-uni")
    assert row.id == result.model_version_id and row.data_fingerprint == data.fingerprint
    assert row.metrics is not None and row.metrics["epochs"] == 1
    with pytest.raises(NotFoundError):
        find_encoder(catalog_engine, label="seq2seq-lstm-bi")
    encoder = load_encoder(row, device="cpu")
    np.testing.assert_array_equal(
        encoder.embed(data.playlists[:3]), load_encoder(row, device="cpu").embed(data.playlists[:3])
    )
    with catalog_engine.connect() as conn:
        status = conn.execute(
            sa.select(PipelineRun.status).where(PipelineRun.job == "train playlist-encoder")
        )
        assert status.scalar_one() == "done"
    result.path.unlink()
    with pytest.raises(NotFoundError, match="missing"):
        load_encoder(row)
