"""Fusing ranked candidate lists: weighted reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from recsys.recommend.candidates import Candidate, Candidates


class Fused:
    """A track after fusion: its fused score and the (source, candidate) pairs that proposed it."""

    __slots__ = ("hits", "score", "track_id")

    def __init__(self, track_id: int, score: float, hits: list[tuple[str, Candidate]]) -> None:
        self.track_id = track_id
        self.score = score
        self.hits = hits

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.hits))

    @property
    def because(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(seed for _, c in self.hits for seed in c.because))


class Fusion:
    """The fused ranking: track ids and scores best first; per-track hits on demand."""

    def __init__(self, ranked: Mapping[str, Candidates], track_ids: np.ndarray, scores: np.ndarray) -> None:
        self.ranked = ranked
        self.track_ids = track_ids
        self.scores = scores
        self._positions: dict[str, dict[int, int]] | None = None

    def __len__(self) -> int:
        return int(self.track_ids.shape[0])

    def hits(self, track_id: int) -> list[tuple[str, Candidate]]:
        if self._positions is None:
            self._positions = {
                name: {t: i for i, t in enumerate(c.track_ids.tolist())} for name, c in self.ranked.items()
            }
        return [
            (name, self.ranked[name][pos[track_id]])
            for name, pos in self._positions.items()
            if track_id in pos
        ]

    def entry(self, i: int) -> Fused:
        track_id = int(self.track_ids[i])
        return Fused(track_id, float(self.scores[i]), self.hits(track_id))

    def __iter__(self) -> Iterator[Fused]:
        return (self.entry(i) for i in range(len(self)))


def reciprocal_rank_fusion(
    ranked: Mapping[str, Candidates],
    *,
    weights: Mapping[str, float] | None = None,
    k: float = 60.0,
) -> Fusion:
    """Σ_s w_s / (k + rank_s(t)) over the sources that rank t (ranks from 1), best first.

    Cormack, Clarke and Büttcher (2009). A source missing from ``weights`` weighs 1. Ties
    keep the order in which tracks were first proposed (sources in the given order).
    """
    ids, contributions = [], []
    for name, candidates in ranked.items():
        weight = 1.0 if weights is None else float(weights.get(name, 1.0))
        ids.append(candidates.track_ids)
        contributions.append(weight / (k + np.arange(1, len(candidates) + 1, dtype=np.float64)))
    if not ids or sum(len(i) for i in ids) == 0:
        return Fusion(ranked, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    all_ids = np.concatenate(ids)
    unique, first, inverse = np.unique(all_ids, return_index=True, return_inverse=True)
    scores = np.bincount(inverse, weights=np.concatenate(contributions), minlength=len(unique))
    order = np.lexsort((first, -scores))
    return Fusion(ranked, unique[order], scores[order])
