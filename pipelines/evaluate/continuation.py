"""Evaluation jobs: continuation on held-out playlists, and top-K on held-out listens.

These read the catalog, build the split and the training matrix (held-out playlists never
reach it), fit the methods and hand the scoring to ``recsys.evaluation``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.matrix import playlist_matrix
from recsys.errors import InputError
from recsys.evaluation.continuation import (
    MethodsConfig,
    build_methods,
    fit_sources,
    needed_sources,
    parse_methods,
    score_methods,
)
from recsys.evaluation.ranker import FittedSources, fit_all_sources, fit_rankers
from recsys.evaluation.reports import continuation_report
from recsys.evaluation.splits import TestCase, challenge_split, validation_folds
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.ranker import Ranker, RankerConfig, RankerStage
from recsys.recommend.ranker_features import ARTIST_SOURCES, FEATURE_GROUPS


def heldout_namespace(paths: Sequence[Path]) -> str:
    """A namespace of its own for held-out MPD files, stable for the same paths."""
    joined = "\n".join(sorted(str(p.resolve()) for p in paths))
    return "heldout-" + hashlib.sha256(joined.encode()).hexdigest()[:12]


def ingest_test_source(engine: Engine, paths: Sequence[Path], batch_rows: int = 200_000) -> str:
    """Ingest held-out MPD files into their own namespace (never the training one)."""
    namespace = heldout_namespace(paths)
    report = ingest_mpd(engine, list(paths), namespace=namespace, batch_rows=batch_rows)
    if report.unreadable:
        raise InputError("; ".join(report.unreadable))
    return namespace


def evaluate_continuation(
    engine: Engine,
    *,
    methods: str | Sequence[str] = "popularity,knn,als,bpr,hybrid",
    test_playlists: int | None = 500,
    test_source: Sequence[Path] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    seed: int = 0,
    n: int = 500,
    config: MethodsConfig | None = None,
    batch_rows: int = 200_000,
    ranker_config: RankerConfig | None = None,
    ablation: bool = False,
) -> dict[str, Any]:
    """Score continuation methods; returns the report dictionary.

    Without ``test_source``, ``test_playlists`` playlists of ``namespace`` are held out in a
    seeded challenge split and the rest trains. With it, the whole namespace trains and the
    playlists in those MPD files (all, or ``test_playlists`` of them) are the tests. The
    ``ranker`` method is fitted on ``config.validation`` training playlists that are not
    tests (see :func:`train_rankers`); ``ablation`` adds its variants.
    """
    names = parse_methods(methods)
    config = config or MethodsConfig()
    entries = playlist_entries(engine, namespace=namespace)
    playlists = playlists_frame(engine, namespace=namespace)
    if entries.height == 0:
        raise InputError(f"namespace {namespace!r} holds no playlists: ingest some first")
    if test_source:
        test_ns = ingest_test_source(engine, test_source, batch_rows)
        test_entries = playlist_entries(engine, namespace=test_ns)
        if test_entries.height == 0:
            raise InputError(
                f"{', '.join(map(str, test_source))}: no test playlists landed in {test_ns} "
                "(were these files already ingested into the catalog? test playlists must be unseen)"
            )
        test_lists = playlists_frame(engine, namespace=test_ns)
        available = test_entries.get_column("playlist_id").n_unique()
        n_test = min(test_playlists or available, available)
        cases = challenge_split(test_entries, test_lists, n_test=n_test, seed=seed)
        train = playlist_matrix(entries)
        split = f"test source {test_ns}"
    else:
        if not test_playlists:
            raise InputError("give --test-playlists N or --test-source PATH")
        cases = challenge_split(entries, playlists, n_test=test_playlists, seed=seed)
        train = playlist_matrix(entries, exclude=[c.playlist_id for c in cases])
        split = "held out of the catalog"
    train_ids = set(train.row_keys.tolist())
    leaked = [c.playlist_id for c in cases if c.playlist_id in train_ids]
    if leaked:
        raise InputError(f"{len(leaked)} test playlists are in the training matrix (first: {leaked[0]})")
    tracks = TrackTable(tracks_frame(engine))
    start = time.perf_counter()
    ranker_info: dict[str, Any] = {}
    if {"ranker", *ARTIST_SOURCES} & set(names):
        test_ids = [] if test_source else [c.playlist_id for c in cases]
        fitted = fit_all_sources(train, playlists, tracks, config)
        sources, fit_seconds = dict(fitted.sources), dict(fitted.seconds)
        services = build_methods(sources, tracks, [m for m in names if m != "ranker"], config)
        if "ranker" in names:
            variants = ranker_variants(ranker_config or RankerConfig(), ablation)
            rankers, ranker_info = train_rankers(entries, playlists, tracks, test_ids, variants, config, seed)
            fit_seconds.update({f"ranker:{k}": v for k, v in ranker_info.pop("seconds").items()})
            for name, ranker in rankers.items():
                services[name] = ContinuationService(
                    list(sources.values()), tracks, weights=config.hybrid_weights, rrf_k=config.rrf_k,
                    ranker=RankerStage(ranker, fitted.features),
                )  # fmt: skip
            services = {m: services[m] for m in [*names, *rankers] if m in services}
    else:
        sources, fit_seconds = fit_sources(train, playlists, needed_sources(names), config)
        services = build_methods(sources, tracks, names, config)
    results = score_methods(services, cases, lambda t: tracks.artist(t), n=n)
    settings = {
        "split": split,
        "seed": seed,
        "n": n,
        "namespace": namespace,
        "train_shape": list(train.shape),
        "train_nnz": train.nnz,
        "als": config.als.as_dict(),
        "bpr": config.bpr.as_dict(),
        "hybrid_weights": dict(config.hybrid_weights),
        "rrf_k": config.rrf_k,
        "seconds": round(time.perf_counter() - start, 1),
    }
    report = continuation_report(results, settings=settings, fit_seconds=fit_seconds)
    if ranker_info:
        report["ranker"] = ranker_info
    return report


def ranker_variants(base: RankerConfig, ablation: bool) -> dict[str, RankerConfig]:
    """The ranker, and with ``ablation`` one ranker without the artist sources and one without
    each feature group."""
    variants = {"ranker": base}
    if ablation:
        variants["ranker-no_artist_sources"] = replace(base, drop_sources=ARTIST_SOURCES)
        for group in FEATURE_GROUPS:
            variants[f"ranker-no_{group}"] = replace(base, drop_groups=(group,))
    return variants


def train_rankers(
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    tracks: TrackTable,
    test_ids: Sequence[int],
    variants: Mapping[str, RankerConfig],
    config: MethodsConfig,
    seed: int,
) -> tuple[dict[str, Ranker], dict[str, Any]]:
    """Rankers fitted on validation playlists carved from the training ones (never ``test_ids``):
    ``config.folds`` disjoint sets of ``config.validation`` playlists, each over sources fitted
    on the training playlists less that set."""
    folds: list[tuple[FittedSources, list[TestCase]]] = []
    taken: list[int] = []
    for validation in validation_folds(
        entries,
        playlists,
        n=config.validation,
        folds=config.folds,
        exclude=test_ids,
        seed=seed,
        views=config.views,
    ):
        val_ids = sorted({c.playlist_id for c in validation})
        overlap = set(val_ids) & set(test_ids)
        if overlap:
            raise InputError(
                f"{len(overlap)} validation playlists are test playlists (first: {min(overlap)})"
            )
        taken += val_ids
        inner = playlist_matrix(entries, exclude=[*test_ids, *val_ids])
        folds.append((fit_all_sources(inner, playlists, tracks, config), validation))
    rankers, seconds = fit_rankers(folds, variants)
    for i, (fitted, _) in enumerate(folds):
        seconds.update({f"fold{i}:sources:{k}": v for k, v in fitted.seconds.items()})
    info = {
        "validation_playlists": len(taken),
        "validation_queries": sum(len(cases) for _, cases in folds),
        "folds": len(folds),
        "views": config.views,
        "validation_train_shape": list(inner.shape),
        "config": variants["ranker"].as_dict(),
        "importances": {name: r.importances() for name, r in rankers.items()},
        "seconds": seconds,
    }
    return rankers, info
