"""Fusing ranked candidate lists: weighted reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recsys.recommend.candidates import Candidate


class Fused:
    """A track after fusion: its fused score and the (source, candidate) pairs that proposed it."""

    __slots__ = ("hits", "score", "track_id")

    def __init__(self, track_id: int) -> None:
        self.track_id = track_id
        self.score = 0.0
        self.hits: list[tuple[str, Candidate]] = []

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.hits))

    @property
    def because(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(seed for _, c in self.hits for seed in c.because))


def reciprocal_rank_fusion(
    ranked: Mapping[str, Sequence[Candidate]],
    *,
    weights: Mapping[str, float] | None = None,
    k: float = 60.0,
) -> list[Fused]:
    """Σ_s w_s / (k + rank_s(t)) over the sources that rank t (ranks from 1), best first.

    Cormack, Clarke and Büttcher (2009). A source missing from ``weights`` weighs 1. Ties
    keep the order in which tracks were first proposed (sources in the given order).
    """
    fused: dict[int, Fused] = {}
    for name, candidates in ranked.items():
        weight = 1.0 if weights is None else float(weights.get(name, 1.0))
        for rank, candidate in enumerate(candidates, start=1):
            entry = fused.get(candidate.track_id)
            if entry is None:
                entry = fused[candidate.track_id] = Fused(candidate.track_id)
            entry.score += weight / (k + rank)
            entry.hits.append((name, candidate))
    return sorted(fused.values(), key=lambda f: -f.score)
