"""Scoring continuation methods on held-out playlists.

A *method* is a :class:`~recsys.recommend.continuation.ContinuationService` built from
candidate sources fitted on the training matrix only (held-out playlists never reach it).
``build_methods`` makes the standard ones: popularity, item-kNN, ALS, BPR, the title
cold-start source, and the hybrid that fuses ALS, item-kNN, title and popularity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from recsys.collaborative.baselines import ItemKNN, PlaylistKNN, Popularity
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import InteractionMatrix
from recsys.errors import InputError
from recsys.evaluation.metrics import continuation_metrics
from recsys.evaluation.splits import TestCase
from recsys.recommend.candidates import CandidateSource, ScorerSource, TitleSource
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.service import DEFAULT_WEIGHTS

METHODS = (
    "popularity",
    "knn",
    "playlist_knn",
    "als",
    "bpr",
    "title",
    "artist_knn",
    "seed_artists",
    "hybrid",
    "fusion",
    "ranker",
)
HYBRID_MEMBERS = ("als", "knn", "title", "popularity")
FUSED = ("hybrid", "fusion")  # the fusion of the hybrid's members (two names for one method)


@dataclass(frozen=True)
class MethodsConfig:
    """How the standard methods are fitted and fused."""

    als: MFConfig = field(default_factory=lambda: MFConfig(kind="als", factors=64, iterations=15, alpha=10.0))
    bpr: MFConfig = field(
        default_factory=lambda: MFConfig(
            kind="bpr", factors=64, iterations=100, learning_rate=0.05, regularization=0.01
        )
    )
    knn_row_decay: float = 0.0
    hybrid_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    rrf_k: float = 60.0
    validation: int = 400  # training playlists carved out to fit the ranker on, per fold
    folds: int = 8  # disjoint validation sets, each with sources fitted without it
    views: int = 1  # seed categories each validation playlist is shown in (splits.extra_views)


def parse_methods(text: str | Sequence[str]) -> list[str]:
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise InputError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(METHODS)}"
        )
    return list(dict.fromkeys(names))


def fit_sources(
    train: InteractionMatrix,
    playlists: pl.DataFrame,
    needed: Sequence[str],
    config: MethodsConfig,
    *,
    fitted: Mapping[str, MatrixFactorization] | None = None,
) -> tuple[dict[str, CandidateSource], dict[str, float]]:
    """Fit the candidate sources named in ``needed``; returns them and each fit's seconds.

    ``fitted`` passes factorisation models already trained on ``train`` (a saved ALS).
    """
    sources: dict[str, CandidateSource] = {}
    seconds: dict[str, float] = {}
    for name in needed:
        start = time.perf_counter()
        if name == "popularity":
            popularity = Popularity()
            popularity.fit(train)
            sources[name] = ScorerSource(
                popularity, train.items, label="popular", needs_seeds=False, static=True
            )
        elif name == "knn":
            knn = ItemKNN(row_decay=config.knn_row_decay)
            knn.fit(train)
            sources[name] = ScorerSource(
                knn, train.items, label="often together (item-kNN)", positive_only=True
            )
        elif name == "playlist_knn":
            playlist_knn = PlaylistKNN()
            playlist_knn.fit(train)
            sources[name] = ScorerSource(
                playlist_knn, train.items, label="in playlists like this one", positive_only=True
            )
        elif name in ("als", "bpr"):
            model = (fitted or {}).get(name)
            if model is None:
                model = MatrixFactorization(config.als if name == "als" else config.bpr)
                model.fit(train)
            sources[name] = ScorerSource(model, train.items, label=f"similar taste ({name.upper()})")
        elif name == "title":
            sources[name] = TitleSource(train, playlists)
        else:
            raise InputError(f"unknown candidate source {name!r}")
        seconds[name] = time.perf_counter() - start
    return sources, seconds


def build_methods(
    sources: Mapping[str, CandidateSource],
    tracks: TrackTable,
    methods: Sequence[str],
    config: MethodsConfig,
) -> dict[str, ContinuationService]:
    out = {}
    for method in methods:
        if method in FUSED:
            members = [sources[m] for m in HYBRID_MEMBERS]
            out[method] = ContinuationService(
                members, tracks, weights=config.hybrid_weights, rrf_k=config.rrf_k
            )
        else:
            out[method] = ContinuationService([sources[method]], tracks, rrf_k=config.rrf_k)
    return out


def needed_sources(methods: Sequence[str]) -> list[str]:
    needed: list[str] = []
    for method in methods:
        for name in HYBRID_MEMBERS if method in FUSED else (method,):
            if name not in needed:
                needed.append(name)
    return needed


@dataclass
class CaseResult:
    method: str
    playlist_id: int
    category: str
    adapted: bool
    metrics: dict[str, float]
    seconds: float


def score_methods(
    services: Mapping[str, ContinuationService],
    cases: Sequence[TestCase],
    artist_of: Callable[[int], int | None],
    *,
    n: int = 500,
) -> list[CaseResult]:
    """Run every method on every test case and score its top ``n``."""
    results = []
    for method, service in services.items():
        for case in cases:
            start = time.perf_counter()
            if case.seeds or case.title:
                ranked = [r.track_id for r in service.recommend(list(case.seeds), case.title, n)]
            else:
                ranked = []
            elapsed = time.perf_counter() - start
            results.append(
                CaseResult(
                    method,
                    case.playlist_id,
                    case.category,
                    case.adapted,
                    continuation_metrics(ranked, case.holdout, artist_of),
                    elapsed,
                )
            )
    return results
