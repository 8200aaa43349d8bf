"""Ranking metrics of the RecSys Challenge 2018 and the usual top-K ones.

All take the ranked recommendation (track ids, best first) and the ground truth (the
distinct held-out track ids); ``artist_of`` maps a track to its artist for the
challenge's artist partial credit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

CLICKS_NONE = 51  # the challenge's score when no relevant track is in the 500


def r_precision(ranked: Sequence[int], truth: Sequence[int]) -> float:
    """|truth ∩ ranked[:|truth|]| / |truth| (tracks only)."""
    if not truth:
        return 0.0
    relevant = set(truth)
    return len(relevant.intersection(ranked[: len(relevant)])) / len(relevant)


def r_precision_artist(
    ranked: Sequence[int], truth: Sequence[int], artist_of: Callable[[int], int | None]
) -> float:
    """The challenge's R-precision: track hits plus 0.25 per further truth artist matched.

    (|S_T ∩ G_T| + 0.25·|S_A ∩ G_A|) / |G_T| over the first |G_T| recommendations, where the
    artist matches count only artists of truth tracks not already matched exactly.
    """
    if not truth:
        return 0.0
    relevant = set(truth)
    top = ranked[: len(relevant)]
    hits = relevant.intersection(top)
    missed_artists = {artist_of(t) for t in relevant - hits} - {None}
    top_artists = {artist_of(t) for t in top if t not in hits} - {None}
    return (len(hits) + 0.25 * len(missed_artists & top_artists)) / len(relevant)


def ndcg(ranked: Sequence[int], truth: Sequence[int], k: int | None = None) -> float:
    """NDCG with binary relevance over the first ``k`` (all when None), 1/log2(rank+1) gains."""
    if not truth:
        return 0.0
    relevant = set(truth)
    top = ranked if k is None else ranked[:k]
    dcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(top) if t in relevant)
    ideal_n = len(relevant) if k is None else min(len(relevant), k)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(ideal_n))
    return dcg / idcg if idcg else 0.0


def clicks(ranked: Sequence[int], truth: Sequence[int], limit: int = 500) -> int:
    """⌊(rank of the first relevant track − 1) / 10⌋; 51 when none is in the first ``limit``."""
    relevant = set(truth)
    for i, t in enumerate(ranked[:limit]):
        if t in relevant:
            return i // 10
    return CLICKS_NONE


def recall_at(ranked: Sequence[int], truth: Sequence[int], k: int) -> float:
    if not truth:
        return 0.0
    relevant = set(truth)
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def precision_at(ranked: Sequence[int], truth: Sequence[int], k: int) -> float:
    return len(set(truth).intersection(ranked[:k])) / k


def continuation_metrics(
    ranked: Sequence[int], truth: Sequence[int], artist_of: Callable[[int], int | None]
) -> dict[str, float]:
    """Every continuation metric of one test playlist."""
    return {
        "r_precision": r_precision(ranked, truth),
        "r_precision_artist": r_precision_artist(ranked, truth, artist_of),
        "ndcg": ndcg(ranked, truth),
        "clicks": float(clicks(ranked, truth)),
        "recall@50": recall_at(ranked, truth, 50),
        "recall@500": recall_at(ranked, truth, 500),
    }


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
