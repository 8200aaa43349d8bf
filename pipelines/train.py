"""Training jobs: factorisation models on the catalog's playlists, saved and recorded."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine

from recsys.catalog.queries import playlist_entries
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import playlist_matrix
from recsys.collaborative.store import SavedModel, save_model
from recsys.errors import InputError


def train_factorization(
    engine: Engine, models_dir: Path, config: MFConfig, *, namespace: str = DEFAULT_NAMESPACE
) -> SavedModel:
    """Fit ALS or BPR on the playlist×track matrix of ``namespace``, save it, record its version."""
    entries = playlist_entries(engine, namespace=namespace)
    if entries.height == 0:
        raise InputError(f"namespace {namespace!r} holds no playlists: ingest some first")
    matrix = playlist_matrix(entries)
    model = MatrixFactorization(config)
    start = time.perf_counter()
    model.fit(matrix)
    seconds = time.perf_counter() - start
    return save_model(
        engine,
        models_dir,
        model,
        matrix,
        metrics={"fit_seconds": round(seconds, 3), "rows": matrix.shape[0], "items": matrix.shape[1]},
    )
