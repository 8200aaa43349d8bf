"""How a listener's likes and dislikes shape a continuation.

:meth:`~recsys.recommend.continuation.ContinuationService.recommend` takes the
listener's opinions (track id → ``+1`` like, ``-1`` dislike, as
``recsys.catalog.feedback.user_feedback`` returns them) and applies these rules:

- A disliked track is never recommended, nor any other release of its recording.
- A candidate close to a disliked track is ranked lower. "Close" is the item-kNN
  cosine similarity s of co-occurrence in playlists (|playlists holding both| /
  √(|holding one| · |holding the other|)); the candidate's fused score is multiplied by
  ``1 - dislike_penalty · s`` with s its highest similarity to any disliked track. With
  the default ``dislike_penalty`` of 0.5 a track that is always listed with a disliked
  one loses half its score (under reciprocal rank fusion that moves a first-ranked
  track below the sixtieth), one that shares a tenth of its playlists loses 5 %, and a
  track never listed with one keeps its score. The reason then says so
  ("ranked lower: close to … which you disliked") when the penalty took at least
  ``note_from`` (5 %) off and moved the track behind one it was ahead of.
- A liked track joins the seeds, after the given ones, when it is close to them: its
  cosine similarity to at least one given seed is at least ``like_similarity`` (0.05);
  at most ``max_liked_seeds`` (25) join, the closest first. As a seed it steers every
  source and is never recommended. A liked track far from the seeds (another genre, a
  mood of another day) leaves this continuation alone and may be recommended like any
  other track; with no given seed (a title alone) no liked track joins.
- The seeds the caller gives stay seeds whatever the listener thinks of them.

A service built without an item-kNN model only leaves the disliked tracks out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.collaborative.baselines import ItemKNN
from recsys.collaborative.matrix import ItemMap
from recsys.errors import InputError

LIKED, DISLIKED = 1, -1


@dataclass(frozen=True)
class FeedbackPolicy:
    """How strongly opinions act (see the module docstring)."""

    dislike_penalty: float = 0.5
    like_similarity: float = 0.05
    max_liked_seeds: int = 25
    note_from: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.dislike_penalty <= 1.0:
            raise ValueError(f"dislike_penalty must be within [0, 1], got {self.dislike_penalty}")
        if self.max_liked_seeds < 0:
            raise ValueError("max_liked_seeds must not be negative")


class ItemSimilarity:
    """Cosine similarity of tracks by co-occurrence in playlists (a fitted item-kNN), by catalog id."""

    def __init__(self, knn: ItemKNN, items: ItemMap) -> None:
        self.knn = knn
        self.items = items

    def _positions(self, track_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        index = self.items.index
        return np.fromiter(
            ((-1 if (i := index(int(t))) is None else i) for t in track_ids),
            dtype=np.int64,
            count=len(track_ids),
        )

    def closest(
        self, targets: Sequence[int] | np.ndarray, others: Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each target, its highest similarity to any of ``others`` and which one (-1: none).

        Tracks the model does not know have similarity 0 to everything.
        """
        best = np.zeros(len(targets), dtype=np.float64)  # (T,)
        which = np.full(len(targets), -1, dtype=np.int64)  # (T,) catalog ids
        at = self._positions(targets)
        other_ids = np.asarray(others, dtype=np.int64)
        other_at = self._positions(other_ids)
        known_others = other_at >= 0
        rows = np.flatnonzero(at >= 0)
        if len(rows) == 0 or not known_others.any():
            return best, which
        other_ids, other_at = other_ids[known_others], other_at[known_others]
        sim = self.knn.similarity(at[rows], other_at)  # (T', O) sparse
        top = np.asarray(sim.max(axis=1).toarray()).ravel()
        arg = np.asarray(sim.argmax(axis=1)).ravel()
        best[rows] = top
        which[rows] = np.where(top > 0, other_ids[arg], -1)
        return best, which


@dataclass
class Opinions:
    """One request's view of the listener's opinions."""

    disliked: frozenset[int] = frozenset()
    liked: frozenset[int] = frozenset()
    extra_seeds: list[int] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        feedback: Mapping[int, int] | None,
        seeds: Sequence[int],
        similarity: ItemSimilarity | None,
        policy: FeedbackPolicy,
    ) -> Opinions:
        """Split ``feedback`` and choose the liked tracks that join ``seeds``."""
        if not feedback:
            return cls()
        liked: list[int] = []
        disliked: list[int] = []
        for track_id, rating in feedback.items():
            if isinstance(rating, bool) or rating not in (LIKED, DISLIKED):
                raise InputError(f"feedback on track {track_id}: rating must be 1 or -1, got {rating!r}")
            (liked if rating == LIKED else disliked).append(int(track_id))
        given = set(seeds)
        extra: list[int] = []
        candidates = [t for t in liked if t not in given]
        if similarity is not None and seeds and candidates and policy.max_liked_seeds > 0:
            closeness, _ = similarity.closest(candidates, list(seeds))
            order = np.argsort(-closeness, kind="stable")
            extra = [
                candidates[i] for i in order if closeness[i] >= policy.like_similarity and closeness[i] > 0
            ][: policy.max_liked_seeds]
        return cls(frozenset(disliked), frozenset(liked), extra)

    def __bool__(self) -> bool:
        return bool(self.disliked or self.liked)


@dataclass(frozen=True)
class Penalty:
    """A candidate ranked lower: the disliked track it is close to, how close, and its score factor."""

    disliked: int
    similarity: float
    factor: float


def penalised(
    track_ids: np.ndarray,
    scores: np.ndarray,
    disliked: frozenset[int],
    similarity: ItemSimilarity | None,
    policy: FeedbackPolicy,
) -> tuple[np.ndarray, np.ndarray, dict[int, Penalty]]:
    """Scores multiplied by ``1 - penalty · s`` (s: closeness to the nearest disliked track), re-ranked.

    Returns the track ids and scores best first (ties keep their order) and the penalty of
    each track that the penalty moved down (behind a track it was ahead of; the disliked
    tracks themselves not counted) and whose score fell by at least ``policy.note_from``:
    a whole neighbourhood lowered alike keeps its order and says nothing.
    """
    if not disliked or similarity is None or policy.dislike_penalty == 0 or len(track_ids) == 0:
        return track_ids, scores, {}
    closeness, nearest = similarity.closest(track_ids, sorted(disliked))
    factor = 1.0 - policy.dislike_penalty * np.clip(closeness, 0.0, 1.0)  # (T,)
    adjusted = scores * factor
    order = np.argsort(-adjusted, kind="stable")
    kept = ~np.isin(track_ids, np.fromiter(disliked, dtype=np.int64, count=len(disliked)))  # (T,)
    before = np.cumsum(kept) - 1  # (T,) rank among the kept tracks in the fused order
    after = np.empty(len(order), dtype=np.int64)
    after[order] = np.cumsum(kept[order]) - 1  # (T,) rank among the kept tracks after the penalty
    noted = np.flatnonzero((1.0 - factor >= policy.note_from) & (after > before) & kept)
    notes = {
        int(track_ids[i]): Penalty(int(nearest[i]), float(closeness[i]), float(factor[i])) for i in noted
    }
    return track_ids[order], adjusted[order], notes
