"""Top-K evaluation on listening data (user × artist play counts), e.g. HetRec 2011 Last.fm 2k.

Listens come from the catalog's ``listen`` table (the product path) or straight from the
HetRec ``user_artists.dat`` file. Each user with enough artists has a seeded share of them
held out; models are fitted on the rest and rank, for each user, the artists that user
has not played in training.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, select

from recsys.catalog.reads import read_frame
from recsys.catalog.schema import Listen
from recsys.collaborative.base import ItemScorer, top_n
from recsys.collaborative.baselines import ItemKNN, Popularity
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import listen_matrix
from recsys.errors import InputError
from recsys.evaluation.metrics import ndcg, precision_at, recall_at

LISTEN_METHODS = ("popularity", "knn", "als", "bpr")
METRICS = ("precision@10", "ndcg@10", "recall@50")


@dataclass
class ListenData:
    """Listens as (user_key, item_id, weight), and the lines that could not be read."""

    frame: pl.DataFrame
    problems: list[str] = field(default_factory=list)


def read_hetrec_user_artists(folder: Path) -> ListenData:
    """``user_artists.dat`` (userID, artistID, weight; tab-separated, CRLF or LF)."""
    path = folder / "user_artists.dat" if folder.is_dir() else folder
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not lines or lines[0].strip().split("\t") != ["userID", "artistID", "weight"]:
        raise InputError(f"{path}: not a HetRec user_artists.dat file (header {lines[:1]!r})")
    users, items, weights, problems = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        try:
            user, item, weight = parts[0], int(parts[1]), float(parts[2])
            if len(parts) != 3 or weight <= 0:
                raise ValueError("expected three fields and a positive weight")
        except (ValueError, IndexError) as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        users.append(user)
        items.append(item)
        weights.append(weight)
    frame = pl.DataFrame(
        {"user_key": users, "item_id": items, "weight": weights},
        schema={"user_key": pl.String, "item_id": pl.Int64, "weight": pl.Float64},
    )
    return ListenData(frame, problems)


def listens_from_catalog(engine: Engine, source: str | None = None) -> ListenData:
    """User × artist listens from the catalog (rows without an artist are left out)."""
    stmt = select(Listen.user_key, Listen.artist_id, Listen.weight).where(Listen.artist_id.is_not(None))
    if source is not None:
        stmt = stmt.where(Listen.source == source)
    frame = read_frame(engine, stmt, {"user_key": pl.String, "item_id": pl.Int64, "weight": pl.Float64})
    if not frame.height:
        raise InputError("the catalog holds no listens with an artist: ingest listens or pass --path")
    return ListenData(frame)


def holdout_split(
    frame: pl.DataFrame, *, holdout: float = 0.2, min_items: int = 5, seed: int = 0
) -> tuple[pl.DataFrame, dict[str, set[int]]]:
    """Hold out ``holdout`` of the distinct items of each user with ``min_items`` or more."""
    if not 0 < holdout < 1:
        raise InputError(f"holdout must be between 0 and 1, got {holdout}")
    pairs = frame.group_by("user_key", "item_id").agg(pl.col("weight").sum()).sort("user_key", "item_id")
    rng = np.random.default_rng(seed)
    test: dict[str, set[int]] = {}
    keep = np.ones(pairs.height, dtype=bool)
    users = pairs.get_column("user_key").to_numpy()
    items = pairs.get_column("item_id").to_numpy()
    boundaries = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    for start, end in itertools.pairwise(boundaries):
        size = end - start
        if size < min_items:
            continue
        chosen = start + rng.choice(size, size=max(1, round(size * holdout)), replace=False)
        keep[chosen] = False
        test[str(users[start])] = {int(i) for i in items[chosen]}
    return pairs.filter(pl.Series(keep)), test


LISTEN_ALS = MFConfig(kind="als", factors=64, iterations=15, alpha=2.0, regularization=0.1)
LISTEN_BPR = MFConfig(kind="bpr", factors=64, iterations=100, learning_rate=0.05, regularization=0.01)


def _scorer(name: str, als: MFConfig, bpr: MFConfig) -> ItemScorer:
    if name == "popularity":
        return Popularity()
    if name == "knn":
        return ItemKNN()
    if name in ("als", "bpr"):
        return MatrixFactorization(als if name == "als" else bpr)
    raise InputError(f"unknown method {name!r}: choose from {', '.join(LISTEN_METHODS)}")


def evaluate_listens(
    data: ListenData,
    *,
    methods: str | Sequence[str] = LISTEN_METHODS,
    holdout: float = 0.2,
    seed: int = 0,
    als: MFConfig = LISTEN_ALS,
    bpr: MFConfig = LISTEN_BPR,
) -> dict[str, Any]:
    """Fit each method on the training listens (log-scaled play counts) and score held-out items."""
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    train_pairs, test = holdout_split(data.frame, holdout=holdout, seed=seed)
    matrix = listen_matrix(train_pairs)
    row_of = {str(k): i for i, k in enumerate(matrix.row_keys.tolist())}
    report: dict[str, Any] = {
        "kind": "listens",
        "methods": names,
        "metric_names": list(METRICS),
        "settings": {
            "users": len(test),
            "holdout": holdout,
            "seed": seed,
            "train_shape": list(matrix.shape),
            "train_nnz": matrix.nnz,
            "weighting": "log1p(play count)",
            "unreadable_lines": len(data.problems),
            "als": als.as_dict(),
            "bpr": bpr.as_dict(),
        },
        "fit_seconds": {},
        "results": {},
    }
    for name in names:
        scorer = _scorer(name, als, bpr)
        start = time.perf_counter()
        scorer.fit(matrix)
        report["fit_seconds"][name] = round(time.perf_counter() - start, 3)
        rows = []
        for user, truth_ids in test.items():
            r = row_of.get(user)
            if r is None:
                continue
            lo, hi = matrix.matrix.indptr[r], matrix.matrix.indptr[r + 1]
            seen, weights = matrix.matrix.indices[lo:hi], matrix.matrix.data[lo:hi]
            best = top_n(scorer.scores(seen, weights), 50, exclude=seen)
            ranked = matrix.items.ids[best].tolist()
            truth = list(truth_ids)
            rows.append(
                (precision_at(ranked, truth, 10), ndcg(ranked, truth, k=10), recall_at(ranked, truth, 50))
            )
        means = np.mean(np.array(rows), axis=0) if rows else np.zeros(3)
        report["results"][name] = dict(zip(METRICS, (float(v) for v in means), strict=True))
    return report
