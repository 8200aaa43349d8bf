"""Fitting the continuation ranker on validation playlists carved from the training ones.

The candidate sources are fitted on the training playlists less the validation ones;
each validation playlist, shown as its seed category shows it, is one ranking query
over its pooled candidates. With several folds, each fold's validation playlists are
disjoint and have sources of their own, fitted without them, so that more playlists
teach the ranker. :func:`fit_rankers` trains several configurations (the ablation) from
one pass over the sources: the candidate lists of every query are asked for once and
pooled again per configuration.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from recsys.collaborative.matrix import InteractionMatrix
from recsys.evaluation.continuation import MethodsConfig, fit_sources
from recsys.evaluation.splits import TestCase
from recsys.recommend.candidates import Candidates, CandidateSource
from recsys.recommend.diversify import TrackTable
from recsys.recommend.ranker import Ranker, RankerConfig, fit_ranker, pool_candidates, training_matrix
from recsys.recommend.ranker_features import PairFeatures
from recsys.recommend.service import artist_sources

SOURCE_NAMES = ("als", "knn", "playlist_knn", "title", "popularity")


@dataclass
class FittedSources:
    """The candidate sources fitted on one matrix, and the feature builder over it."""

    sources: dict[str, CandidateSource]
    features: PairFeatures
    seconds: dict[str, float]


def fit_all_sources(
    train: InteractionMatrix, playlists: pl.DataFrame, tracks: TrackTable, config: MethodsConfig
) -> FittedSources:
    """ALS, item- and playlist-kNN, title, popularity and the two artist sources on ``train``, with features."""
    sources, seconds = fit_sources(train, playlists, SOURCE_NAMES, config)
    start = time.perf_counter()
    index, by_artist = artist_sources(train, tracks)
    for source in by_artist:
        sources[source.name] = source
    seconds["artist"] = time.perf_counter() - start
    als = sources["als"]
    features = PairFeatures(train, index, tracks.titles(), als.scorer, als.items)  # type: ignore[attr-defined]
    return FittedSources(sources, features, seconds)


def fit_rankers(
    folds: Sequence[tuple[FittedSources, Sequence[TestCase]]],
    configs: Mapping[str, RankerConfig],
) -> tuple[dict[str, Ranker], dict[str, float]]:
    """One ranker per configuration, trained on the validation cases of every fold (each
    with the sources fitted without them); and the seconds spent on candidates and on each fit."""
    size = max(c.pool for c in configs.values())
    start = time.perf_counter()
    lists: list[tuple[PairFeatures, TestCase, dict[str, Candidates]]] = [
        (
            fitted.features,
            case,
            {
                n: s.candidates(case.seeds, case.title, size + len(case.seeds))
                for n, s in fitted.sources.items()
            },
        )
        for fitted, cases in folds
        for case in cases
    ]
    seconds = {"candidates": time.perf_counter() - start}
    rankers = {}
    for name, config in configs.items():
        start = time.perf_counter()
        pools = (
            (pool_candidates(per_case, features, case.seeds, case.title, config), case.holdout)
            for features, case, per_case in lists
        )
        x, y, groups = training_matrix(pools)
        rankers[name] = fit_ranker(x, y, groups, config)
        seconds[name] = time.perf_counter() - start
    return rankers, seconds
