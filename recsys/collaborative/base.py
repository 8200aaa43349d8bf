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


_SAMPLE = 4096  # entries in the strided sample that sets top_n's floor
_SAMPLE_FROM = 4 * _SAMPLE  # smaller arrays go straight to the exact partition


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` highest finite scores, best first, never an index in ``exclude``.

    Ties go to the lower index, so the result does not depend on how the partition fell
    (the same items come back whether the excluded ones were masked or filtered after).

    Over a large array a strided sample first gives a score that about ``2n`` entries
    reach; only those are sorted. When fewer than ``n`` finite scores reach it (a skewed
    or ordered array), the exact partition over the whole array answers instead, so the
    result is always the exact top ``n``.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if exclude is not None and len(exclude):
        scores = scores.copy()
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    size = len(scores)
    if n <= 0 or size == 0:
        return np.empty(0, dtype=np.int64)
    if size >= _SAMPLE_FROM and n * 8 <= size:
        step = size // _SAMPLE
        sample = scores[::step]
        rank = min(len(sample), int(np.ceil(len(sample) * 2 * n / size)) + 8)
        floor = np.partition(sample, len(sample) - rank)[len(sample) - rank]
        reach = np.flatnonzero(scores >= floor)
        values = scores[reach]
        finite = np.isfinite(values)
        if int(finite.sum()) >= n:
            reach, values = reach[finite], values[finite]
            return reach[np.lexsort((reach, -values))[:n]].astype(np.int64)
    finite = np.isfinite(scores)
    n = min(n, int(finite.sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    scores = np.where(finite, scores, -np.inf)
    threshold = np.partition(scores, size - n)[size - n]
    above = np.flatnonzero(scores > threshold)
    tied = np.flatnonzero(scores == threshold)[: n - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -scores[chosen]))].astype(np.int64)


def seed_weights(seeds: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Weights aligned with ``seeds`` (1 each when none are given)."""
    if weights is None:
        return np.ones(len(seeds), dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (len(seeds),):
        raise ValueError(f"{len(weights)} weights for {len(seeds)} seeds")
    return weights
