"""Candidate sources for playlist continuation: one small contract, several implementations.

A source takes the seed track ids (catalog ids) and an optional title and returns up to
``n`` ranked candidates, each with the seeds that drove it, as one :class:`Candidates`
(arrays, so that a request for 500 tracks does not build thousands of Python objects). Collaborative scorers (ALS,
BPR, item-kNN, popularity) plug in through :class:`ScorerSource`; the title-only cold
start is :class:`TitleSource`; later sources (sequence models, audio neighbours) only need
a ``name`` and a ``candidates`` method.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import polars as pl
from scipy import sparse

from recsys.collaborative.base import ItemScorer, top_n
from recsys.collaborative.matrix import InteractionMatrix, ItemMap


class Candidate(NamedTuple):
    """One proposed track: catalog id, the source's score, why, and the seeds behind it."""

    track_id: int
    score: float
    reason: str
    because: tuple[int, ...] = ()


@dataclass(frozen=True)
class Candidates:
    """One source's ranked candidates, best first, as arrays.

    ``because[i]`` holds the catalog ids of the seeds that drove candidate i, strongest
    first, padded with -1 (None: the source names no seeds).
    """

    track_ids: np.ndarray  # (T,) int64
    scores: np.ndarray  # (T,) float
    reason: str
    because: np.ndarray | None = None  # (T, k) int64, -1 = none

    @classmethod
    def build(
        cls,
        track_ids: Sequence[int] | np.ndarray,
        scores: Sequence[float] | np.ndarray,
        reason: str,
        because: np.ndarray | None = None,
    ) -> Candidates:
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if values.shape != ids.shape or (because is not None and len(because) != len(ids)):
            raise ValueError("track_ids, scores and because must have one row per candidate")
        return cls(ids, values, reason, None if because is None else np.asarray(because, dtype=np.int64))

    @classmethod
    def none(cls) -> Candidates:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), "")

    def __len__(self) -> int:
        return int(self.track_ids.shape[0])

    def seeds_of(self, i: int) -> tuple[int, ...]:
        if self.because is None:
            return ()
        return tuple(int(b) for b in self.because[i] if b >= 0)

    def __getitem__(self, i: int) -> Candidate:
        return Candidate(int(self.track_ids[i]), float(self.scores[i]), self.reason, self.seeds_of(i))

    def __iter__(self) -> Iterator[Candidate]:
        return (self[i] for i in range(len(self)))


@runtime_checkable
class CandidateSource(Protocol):
    """Anything that proposes ranked tracks for seeds and/or a title."""

    name: str

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates: ...


class ScorerSource:
    """A fitted :class:`~recsys.collaborative.base.ItemScorer` as a candidate source.

    Seeds unknown to the scorer's matrix are ignored; with no known seed a seed-based
    scorer proposes nothing (``needs_seeds``), which the service's other sources cover.
    Each candidate names the ``explain_top`` seeds that contributed most to its score.
    A ``static`` scorer (popularity) scores the same whatever the seeds: it is ranked once
    and each request only drops its seeds from that ranking. With ``positive_only``, items
    scoring zero or less are no candidates: for item-kNN a zero means "never listed with a
    seed", and proposing such tracks (with a reason naming the source) would mislead.
    """

    def __init__(
        self,
        scorer: ItemScorer,
        items: ItemMap,
        *,
        name: str | None = None,
        label: str | None = None,
        needs_seeds: bool = True,
        explain_top: int = 2,
        static: bool = False,
        positive_only: bool = False,
    ) -> None:
        self.scorer = scorer
        self.static = static
        self.positive_only = positive_only
        self._ranking = np.empty(0, dtype=np.int64)
        self._ranked_scores = np.empty(0, dtype=np.float32)
        self.items = items
        self.name = name or scorer.name
        self.label = label or self.name
        self.needs_seeds = needs_seeds
        self.explain_top = explain_top

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        known = self.items.indices(seeds)
        if self.needs_seeds and len(known) == 0:
            return Candidates.none()
        known = np.unique(known)
        if self.static:
            return self._static_candidates(known, n)
        all_scores = self.scorer.scores(known)
        best = top_n(all_scores, n, exclude=known)
        if self.positive_only:
            best = best[all_scores[best] > 0]
        scores = all_scores[best]
        ids = self.items.ids[best]
        if not self.needs_seeds or len(known) == 0 or self.explain_top <= 0:
            return Candidates.build(ids, scores, self.label)
        contributions = self.scorer.explain(known, best)  # (T, S)
        k = min(self.explain_top, contributions.shape[1])
        order = np.argsort(-contributions, axis=1)[:, :k]
        seed_ids = self.items.ids[known][order]  # (T, k) catalog ids, strongest first
        positive = np.take_along_axis(contributions, order, axis=1) > 0
        return Candidates.build(ids, scores, self.label, np.where(positive, seed_ids, -1))

    def _static_candidates(self, known: np.ndarray, n: int) -> Candidates:
        want = n + len(known)
        if len(self._ranking) < want:
            all_scores = self.scorer.scores(known)
            self._ranking = top_n(all_scores, max(want, 2 * len(self._ranking), 1024))
            self._ranked_scores = all_scores[self._ranking]
        keep = ~np.isin(self._ranking[:want], known)
        best = self._ranking[:want][keep][:n]
        return Candidates.build(self.items.ids[best], self._ranked_scores[:want][keep][:n], self.label)


def title_key(title: str) -> str:
    """The catalog's playlist ``name_key`` of a title (``recsys.catalog.keys.name_key``), in
    plain Python: a request must not pay for a data frame."""
    text = unicodedata.normalize("NFKC", title).lower()
    text = re.sub(r"\s*&\s*", " and ", text)
    text = "".join(ch if unicodedata.category(ch)[0] in "LMN" or ch.isspace() else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"^the\s+", "", text, count=1)


def key_tokens(key: str) -> list[str]:
    """Match tokens of a name key: its words, and the whole key."""
    return [*key.split(), f"={key}"] if key else []


class TitleSource:
    """Cold start from a title: tracks of the training playlists whose names resemble it.

    ``playlists``: (playlist_id, name_key) of the matrix rows, from ``playlists_frame``.

    Playlist names are TF-IDF vectors over their words plus the whole name (an exact name
    match counts most); the ``neighbours`` most similar playlists vote for their tracks with
    their similarity, so the result is "what playlists called like this hold most often".
    """

    name = "title"

    def __init__(self, matrix: InteractionMatrix, playlists: pl.DataFrame, *, neighbours: int = 100) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer  # deferred: scikit-learn (ml extra)

        names = dict(playlists.select("playlist_id", "name_key").iter_rows())
        docs = [names.get(int(key)) or "" for key in matrix.row_keys.tolist()]
        # Raw counts of the match tokens, smoothed idf ln((1 + n) / (1 + df)) + 1, unit-length rows.
        self.vectorizer: Any = None  # stays None when no playlist has a usable name
        self.names = sparse.csc_matrix((len(docs), 0), dtype=np.float32)  # (R, V)
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)
        if any(docs):
            self.vectorizer = TfidfVectorizer(analyzer=key_tokens, dtype=np.float32)
            self.names = self.vectorizer.fit_transform(docs).tocsc()
            self.vocabulary = self.vectorizer.vocabulary_
            self.idf = self.vectorizer.idf_.astype(np.float32)
        binary = matrix.matrix.copy()
        binary.data = np.ones_like(binary.data)
        self.items_t = binary.T.tocsr()  # (I, R)
        self.items = matrix.items
        self.neighbours = neighbours

    def playlist_similarity(self, title: str) -> np.ndarray:
        """(R,) cosine similarity of the title to every training playlist name."""
        if self.vectorizer is None:
            return np.zeros(self.names.shape[0], dtype=np.float32)
        # The vectoriser's own weighting (raw counts times idf, unit length; unknown tokens ignored),
        # applied here to the one title: its transform() costs about 1 ms of input checks per call.
        counts = Counter(token for token in key_tokens(title_key(title)) if token in self.vocabulary)
        if not counts:
            return np.zeros(self.names.shape[0], dtype=np.float32)
        columns = np.fromiter((self.vocabulary[token] for token in counts), dtype=np.int64, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=np.float32, count=len(counts)) * self.idf[columns]
        weights /= np.linalg.norm(weights)
        return np.asarray(self.names[:, columns] @ weights).ravel().astype(np.float32)

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        if not title:
            return Candidates.none()
        similarity = self.playlist_similarity(title)
        best = top_n(similarity, self.neighbours)
        best = best[similarity[best] > 0]
        if len(best) == 0:
            return Candidates.none()
        weights = np.zeros_like(similarity)
        weights[best] = similarity[best]
        scores = np.asarray(self.items_t @ weights).ravel()
        known = self.items.indices(seeds)
        top = top_n(np.where(scores > 0, scores, -np.inf), n, exclude=known)
        return Candidates.build(self.items.ids[top], scores[top], f"in playlists named like “{title}”")
