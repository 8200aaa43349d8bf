"""`recsys train ranker`: the continuation ranker fitted on validation playlists of the catalog.

Validation playlists (``validation`` of them per fold, seeded, the folds disjoint) are
carved out of the namespace's playlists and shown as the challenge's seed categories;
per fold, the candidate sources (ALS with the given settings, item- and playlist-kNN,
title, popularity, the artist sources) are fitted on the other playlists; the ranker learns from the validation playlists' pooled candidates. It
is saved under ``<models dir>/ranker/<version>/`` and recorded as a model version of kind
``ranker`` with its settings, the validation size and its feature importances. The
service then ranks with it over the sources fitted on the whole catalog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsys.catalog.model_versions import record_model_version
from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.matrix import playlist_matrix
from recsys.errors import InputError
from recsys.evaluation.continuation import MethodsConfig
from recsys.evaluation.ranker import fit_all_sources, fit_rankers
from recsys.evaluation.splits import validation_folds
from recsys.recommend.diversify import TrackTable
from recsys.recommend.ranker import MODEL_KIND, Ranker, RankerConfig


@dataclass(frozen=True)
class TrainedRanker:
    ranker: Ranker
    path: Path
    metrics: dict[str, Any]


def train_ranker(
    engine: Engine,
    models_dir: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    methods: MethodsConfig | None = None,
    config: RankerConfig | None = None,
    seed: int = 0,
) -> TrainedRanker:
    """Fit, save and record the ranker of ``namespace``'s playlists."""
    methods = methods or MethodsConfig()
    config = config or RankerConfig()
    entries = playlist_entries(engine, namespace=namespace)
    if entries.height == 0:
        raise InputError(f"namespace {namespace!r} holds no playlists: ingest some first")
    playlists = playlists_frame(engine, namespace=namespace)
    start = time.perf_counter()
    tracks = TrackTable(tracks_frame(engine))
    folds, taken = [], []
    for validation in validation_folds(
        entries, playlists, n=methods.validation, folds=methods.folds, seed=seed, views=methods.views
    ):
        val_ids = sorted({c.playlist_id for c in validation})
        taken += val_ids
        train = playlist_matrix(entries, exclude=val_ids)
        folds.append((fit_all_sources(train, playlists, tracks, methods), validation))
    rankers, seconds = fit_rankers(folds, {"ranker": config})
    catalog = playlist_matrix(entries)
    ranker = rankers["ranker"]
    path = ranker.save(models_dir / MODEL_KIND)
    metrics = {
        "validation_playlists": len(taken),
        "validation_queries": sum(len(cases) for _, cases in folds),
        "folds": len(folds),
        "views": methods.views,
        "catalog_shape": list(catalog.shape),
        "fit_seconds": round(time.perf_counter() - start, 1),
        "importances": ranker.importances(),
    }
    params = {"ranker": config.as_dict(), "als": methods.als.as_dict(), "seed": seed, "namespace": namespace}
    with engine.begin() as conn:
        record_model_version(
            conn,
            MODEL_KIND,
            ranker.version,
            path=path,
            params=params,
            data_fingerprint=catalog.fingerprint(),
            metrics={**metrics, "seconds": {k: round(v, 2) for k, v in seconds.items()}},
        )
    return TrainedRanker(ranker, path, metrics)
