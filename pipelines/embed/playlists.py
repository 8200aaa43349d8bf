"""Playlist vectors for the catalog: build an encoder, embed, write; and the probing job.

Vectors are published to the vector store (``playlists`` collection: named vector
``seq2seq``, ``sif`` or ``mean_als``; ``tracks`` collection: ``seq2seq`` from the encoder,
``cf`` from the ALS factors), where the UI and similarity search read them, and are also
written to Parquet files under ``<data dir>/embeddings`` (``playlists_<name>.parquet``
with ``playlist_id`` and ``vector``; ``tracks_<name>.parquet`` with ``track_id`` and
``vector``, a track's vector being the encoder's vector of the one-track playlist), which
the in-process nearest-playlist candidate source and the notebooks read exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from sqlalchemy import Engine

from pipelines.index import publish_vectors
from pipelines.train.playlist_encoder import CatalogPlaylists, load_playlists
from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import playlist_matrix
from recsys.config import Settings
from recsys.errors import ConfigError, NotFoundError
from recsys.evaluation.probing import ProbeTable, build_tasks, probe_all
from recsys.models.base import PlaylistEncoder
from recsys.models.playlist_baselines import MeanVectorEncoder, RandomEncoder, fit_sif
from recsys.models.playlist_seq2seq import Seq2SeqEncoder
from recsys.models.playlist_seq2seq_store import find_encoder, load_encoder
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import PLAYLISTS, TRACKS

MODELS = ("seq2seq", "sif", "mean-als", "random")
SEQ2SEQ_LABELS = ("seq2seq-gru-uni", "seq2seq-gru-bi", "seq2seq-lstm-uni", "seq2seq-lstm-bi")


def als_item_vectors(
    engine: Engine, *, namespace: str = DEFAULT_NAMESPACE, seed: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, ALS item factors) fitted on the playlist×track matrix of ``namespace``."""
    matrix = playlist_matrix(playlist_entries(engine, namespace=namespace))
    model = MatrixFactorization(MFConfig(kind="als", seed=seed, device="cpu"))
    model.fit(matrix)
    return matrix.items.ids, np.asarray(model.item_factors)


def build_encoder(
    engine: Engine,
    model: str,
    data: CatalogPlaylists,
    *,
    label: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    device: str = "auto",
) -> PlaylistEncoder:
    """The encoder named ``model``: a trained seq2seq version, or a baseline fitted on ``data``."""
    if model == "seq2seq":
        return load_encoder(find_encoder(engine, label=label), device=device)
    if model == "sif":
        return fit_sif(data.playlists)
    if model == "mean-als":
        ids, factors = als_item_vectors(engine, namespace=namespace)
        return MeanVectorEncoder("mean-als", ids, factors)
    if model == "random":
        return RandomEncoder(dim=64)
    raise ConfigError(f"unknown playlist encoder {model!r}: use one of {', '.join(MODELS)}")


def known_tracks(encoder: PlaylistEncoder, track_ids: np.ndarray) -> np.ndarray:
    """The tracks the encoder has a vector of its own for (seq2seq: its vocabulary; bags: their item vectors).

    A seq2seq encoder reads every track outside its vocabulary as the unknown token, so
    their one-track vectors would all be the same; they are left out.
    """
    if isinstance(encoder, Seq2SeqEncoder):
        own = encoder.vocab.track_ids
    elif isinstance(encoder, MeanVectorEncoder):
        own = encoder.track_ids
    else:
        return track_ids
    return track_ids[np.isin(track_ids, own)]


def write_vectors(data_dir: Path, kind: str, name: str, ids: np.ndarray, vectors: np.ndarray) -> Path:
    """Store vectors of ``kind`` (playlists or tracks) for the encoder ``name``; returns where."""
    key = "playlist_id" if kind == "playlists" else "track_id"
    path = data_dir / "embeddings" / f"{kind}_{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        {key: np.asarray(ids, dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)},
        schema={key: pl.Int64, "vector": pl.Array(pl.Float32, int(vectors.shape[1]))},
    )
    tmp = path.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)  # readers never see a half-written file
    return path


def read_vectors(data_dir: Path, kind: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) written by :func:`write_vectors`."""
    path = data_dir / "embeddings" / f"{kind}_{name}.parquet"
    if not path.is_file():
        raise NotFoundError(f"no {kind} vectors of {name} at {path}: run `recsys embed playlists` first")
    frame = pl.read_parquet(path)
    return frame[frame.columns[0]].to_numpy(), np.asarray(frame["vector"].to_numpy(), dtype=np.float32)


# Which named vector of the store each encoder family fills (the random control is not served).
PLAYLIST_VECTOR = {"seq2seq": "seq2seq", "sif": "sif", "mean-als": "mean_als"}
TRACK_VECTOR = {"seq2seq": "seq2seq", "mean-als": "cf"}


def publish(
    engine: Engine,
    settings: Settings,
    model: str,
    playlist_ids: np.ndarray,
    vectors: np.ndarray,
    track_ids: np.ndarray,
    track_vectors: np.ndarray,
) -> dict[str, Any]:
    """Publish an encoder's vectors to the vector store; returns the new versions."""
    published: dict[str, Any] = {}
    if model not in PLAYLIST_VECTOR:
        return published
    with open_store(settings) as store:
        report = publish_vectors(engine, store, PLAYLISTS, PLAYLIST_VECTOR[model], playlist_ids, vectors)
        published[f"{PLAYLISTS}.{PLAYLIST_VECTOR[model]}"] = report.version
        if model in TRACK_VECTOR and len(track_ids):
            report = publish_vectors(engine, store, TRACKS, TRACK_VECTOR[model], track_ids, track_vectors)
            published[f"{TRACKS}.{TRACK_VECTOR[model]}"] = report.version
    return published


def embed_catalog(
    engine: Engine,
    settings: Settings,
    model: str,
    *,
    label: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    threads: int | None = None,
) -> dict[str, Any]:
    """Embed every playlist (and every track of the playlists) of ``namespace`` with one encoder."""
    if threads:
        torch.set_num_threads(threads)
    data = load_playlists(engine, namespace=namespace)
    encoder = build_encoder(engine, model, data, label=label, namespace=namespace, device=settings.device)
    started = time.perf_counter()
    vectors = encoder.embed(data.playlists)
    track_ids = known_tracks(
        encoder, np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in data.playlists]))
    )
    track_vectors = encoder.embed([[int(t)] for t in track_ids])
    seconds = time.perf_counter() - started
    data_dir = settings.ensure_data_dir()
    return {
        "encoder": encoder.name,
        "dim": encoder.dim,
        "playlists": len(data.playlists),
        "tracks": len(track_ids),
        "seconds": round(seconds, 2),
        "playlists_path": str(
            write_vectors(data_dir, "playlists", encoder.name, np.asarray(data.playlist_ids), vectors)
        ),
        "tracks_path": str(write_vectors(data_dir, "tracks", encoder.name, track_ids, track_vectors)),
        "vector_store": publish(
            engine, settings, model, np.asarray(data.playlist_ids), vectors, track_ids, track_vectors
        ),
    }


def probing_encoders(
    engine: Engine, data: CatalogPlaylists, *, namespace: str, device: str
) -> tuple[list[PlaylistEncoder], list[str]]:
    """The newest model of every seq2seq variant trained so far, and every baseline; plus what is missing."""
    encoders: list[PlaylistEncoder] = []
    missing: list[str] = []
    for label in SEQ2SEQ_LABELS:
        try:
            encoders.append(build_encoder(engine, "seq2seq", data, label=label, device=device))
        except NotFoundError as exc:
            missing.append(f"{label}: {exc}")
    for model in ("sif", "mean-als", "random"):
        encoders.append(build_encoder(engine, model, data, namespace=namespace, device=device))
    return encoders, missing


def probe_catalog(
    engine: Engine,
    settings: Settings,
    *,
    folds: int = 5,
    seed: int = 0,
    namespace: str = DEFAULT_NAMESPACE,
    threads: int | None = None,
) -> tuple[ProbeTable, list[str]]:
    """The probing table of every encoder on the playlists of ``namespace``, and the variants missing."""
    if threads:
        torch.set_num_threads(threads)
    data = load_playlists(engine, namespace=namespace)
    names = playlists_frame(engine, namespace=namespace)
    name_of = dict(zip(names["playlist_id"].to_list(), names["name"].to_list(), strict=True))
    tracks = tracks_frame(engine)
    track_artist = dict(zip(tracks["track_id"].to_list(), tracks["artist_id"].to_list(), strict=True))
    tasks = build_tasks(data.playlists, [name_of.get(p) for p in data.playlist_ids], track_artist, seed=seed)
    encoders, missing = probing_encoders(engine, data, namespace=namespace, device=settings.device)
    return probe_all(encoders, tasks, folds=folds, seed=seed), missing
