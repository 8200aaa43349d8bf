"""Training jobs: factorisation models on the catalog's playlists, saved and recorded."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine

from recsys.catalog.queries import playlist_entries
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import listen_matrix, playlist_matrix
from recsys.collaborative.store import SavedModel, save_model, trained_model
from recsys.errors import InputError
from recsys.evaluation.listens import listens_from_catalog


def train_factorization(
    engine: Engine,
    models_dir: Path,
    config: MFConfig,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    source: str = "playlists",
    reuse: bool = False,
) -> SavedModel:
    """Fit ALS or BPR, save it and record its version.

    ``source="playlists"``: the playlist×track matrix of ``namespace`` (kind ``als``/``bpr``).
    ``source="listens"``: the user×artist matrix of the catalog's listens, log-scaled play
    counts (kind ``als-listens``/``bpr-listens``). With ``reuse``, a model of the same kind
    and hyperparameters already trained on the same matrix (its data fingerprint) is
    returned instead (``reused`` set), and nothing is fitted.
    """
    kind: str = config.kind
    if source == "playlists":
        entries = playlist_entries(engine, namespace=namespace)
        if entries.height == 0:
            raise InputError(f"namespace {namespace!r} holds no playlists: ingest some first")
        matrix = playlist_matrix(entries)
    elif source == "listens":
        matrix = listen_matrix(listens_from_catalog(engine).frame)
        kind = f"{config.kind}-listens"
    else:
        raise InputError(f"unknown training source {source!r}: use playlists or listens")
    if reuse and (found := trained_model(engine, kind, config, matrix.fingerprint())) is not None:
        return found
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
        kind=kind,
    )
