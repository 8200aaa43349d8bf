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
        sample = scores[:: size // _SAMPLE]
        sample = sample[~np.isnan(sample)]  # NaN sorts last: it must not set the floor
        rank = min(len(sample), int(np.ceil(len(sample) * 2 * n / size)) + 8)
        if rank:
            floor = np.partition(sample, len(sample) - rank)[len(sample) - rank]
            # a floor of -inf (few live scores) lets every finite score through: exact again
            reach = np.flatnonzero(scores > floor if floor == -np.inf else scores >= floor)
            values = scores[reach]
            finite = np.isfinite(values)
            if floor == -np.inf or int(finite.sum()) >= n:
                return _best_first(reach[finite], values[finite], n)
    live = np.flatnonzero(np.isfinite(scores))
    if len(live) <= 8 * n:
        return _best_first(live, scores[live], n)
    values = scores[live]
    threshold = np.partition(values, len(values) - n)[len(values) - n]
    chosen = live[values >= threshold]
    return _best_first(chosen, scores[chosen], n)


def _best_first(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` of ``index`` by descending value, ties to the lower index."""
    return index[np.lexsort((index, -values))[:n]].astype(np.int64)


def seed_weights(seeds: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Weights aligned with ``seeds`` (1 each when none are given)."""
    if weights is None:
        return np.ones(len(seeds), dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (len(seeds),):
        raise ValueError(f"{len(weights)} weights for {len(seeds)} seeds")
    return weights
