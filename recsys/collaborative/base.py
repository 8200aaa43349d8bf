"""The one contract every collaborative item scorer implements, and ranking helpers.

A scorer is fitted on an :class:`~recsys.collaborative.matrix.InteractionMatrix` and then
scores every item for a set of seed items (a new playlist, a listener's history) without
refitting. ``explain`` says how much each seed contributed to a target item's score, so a
recommendation can name the seed tracks that drove it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from recsys.collaborative.matrix import InteractionMatrix


@runtime_checkable
class ItemScorer(Protocol):
    """Scores items for seed items; fitted once, folds new seeds in without refitting."""

    name: str

    def fit(self, matrix: InteractionMatrix) -> None: ...

    def scores(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """(I,) float32 scores of every item for seed item indices (with optional weights)."""
        ...

    def explain(
        self, seeds: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(targets), len(seeds)) contribution of each seed to each target's score."""
        ...


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` highest finite scores, best first, never an index in ``exclude``."""
    scores = np.asarray(scores, dtype=np.float32)
    if exclude is not None and len(exclude):
        scores = scores.copy()
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")].astype(np.int64)


def seed_weights(seeds: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Weights aligned with ``seeds`` (1 each when none are given)."""
    if weights is None:
        return np.ones(len(seeds), dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (len(seeds),):
        raise ValueError(f"{len(weights)} weights for {len(seeds)} seeds")
    return weights
