"""The playlist-embeddings notebook runs end to end on a small demo catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.embed.playlists import write_vectors
from pipelines.ingest.mpd import ingest_mpd
from pipelines.train.playlist_encoder import load_playlists
from recsys.catalog import db
from recsys.catalog.queries import playlists_frame, tracks_frame
from recsys.evaluation.probing import build_tasks, probe_all
from recsys.models.playlist_baselines import RandomEncoder, fit_sif
from recsys.models.playlist_seq2seq_training import fit_seq2seq
from tests.models.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "playlist_embeddings.ipynb"


@pytest.mark.slow
def test_notebook_renders_table_map_and_neighbours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    ingest_mpd(engine, generate_mpd(tmp_path / "mpd", DemoConfig(playlists=150, seed=3)))
    data = load_playlists(engine)
    encoder, _ = fit_seq2seq(data.playlists, tiny_config(epochs=1))
    names = playlists_frame(engine)
    name_of = dict(zip(names["playlist_id"].to_list(), names["name"].to_list(), strict=True))
    tracks = tracks_frame(engine)
    artists = dict(zip(tracks["track_id"].to_list(), tracks["artist_id"].to_list(), strict=True))
    tasks = build_tasks(data.playlists, [name_of[i] for i in data.playlist_ids], artists, seed=0)
    table = probe_all([encoder, fit_sif(data.playlists, dim=8), RandomEncoder(dim=8)], tasks, folds=3)
    (tmp_path / "probing.json").write_text(json.dumps(table.as_dict()))
    vectors = write_vectors(
        tmp_path, "playlists", encoder.name, data.playlist_ids, encoder.embed(data.playlists)
    )

    monkeypatch.setenv("RECSYS_PROBING_REPORT", str(tmp_path / "probing.json"))
    monkeypatch.setenv("RECSYS_PLAYLIST_VECTORS", str(vectors))
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    monkeypatch.setenv("RECSYS_PLAYLIST_FIGURE", str(tmp_path / "map.png"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "seq2seq-gru-uni" in text and "sif" in text and "order-halves" in text
    assert "map of 150 playlists" in text
    assert text.count(" → ") == 5  # five neighbour examples
    assert (tmp_path / "map.png").stat().st_size > 10_000
