"""Continuation candidates from the playlists nearest to the seeds in a playlist-vector space.

The seeds, in their order, are embedded as a playlist with the same encoder that embedded
the catalog's playlists (the seq2seq encoder, or any :class:`PlaylistEncoder`); the
``neighbours`` most similar playlists (cosine) then vote for their tracks with their
similarity, so a track scores "how much of the nearest playlists holds it". Seeds are
never proposed. With no seed there is nothing to embed and the source proposes nothing
(the title and popularity sources of the service cover that case).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from recsys.models.base import PlaylistEncoder
from recsys.recommend.candidates import Candidates


class PlaylistNeighbourSource:
    """A :class:`~recsys.recommend.candidates.CandidateSource` over nearest playlist vectors."""

    def __init__(
        self,
        encoder: PlaylistEncoder,
        playlists: Sequence[Sequence[int]],
        *,
        vectors: np.ndarray | None = None,
        neighbours: int = 50,
        name: str = "seq2seq",
        label: str = "in playlists that flow like this one (seq2seq)",
    ) -> None:
        """``playlists`` are the training playlists; ``vectors`` their embeddings when already computed."""
        self.encoder = encoder
        self.name = name
        self.label = label
        self.neighbours = neighbours
        raw = np.asarray(encoder.embed(playlists) if vectors is None else vectors, dtype=np.float32)  # (R, D)
        self.vectors = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        track_ids = np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in playlists if len(p)]))
        self.track_ids = track_ids  # (I,)
        rows = np.concatenate([np.full(len(set(p)), r) for r, p in enumerate(playlists)])
        cols = np.concatenate([np.searchsorted(track_ids, sorted(set(map(int, p)))) for p in playlists])
        self.members_t = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (cols, rows)), shape=(len(track_ids), len(playlists))
        )  # (I, R): track i is in playlist r

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        if not seeds or n <= 0:
            return Candidates.none()
        query = np.asarray(self.encoder.embed([list(seeds)])[0], dtype=np.float32)  # (D,)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        similarity = self.vectors @ query  # (R,)
        k = min(self.neighbours, len(similarity))
        best = np.argpartition(-similarity, k - 1)[:k]
        weights = np.zeros_like(similarity)
        weights[best] = np.maximum(similarity[best], 0.0)
        scores = np.asarray(self.members_t @ weights).ravel()  # (I,)
        seed_ids = np.asarray(list(seeds), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.track_ids, seed_ids), len(self.track_ids) - 1)
        scores[at[self.track_ids[at] == seed_ids]] = 0.0  # never propose a seed
        positive = np.flatnonzero(scores > 0)
        top = positive[np.argsort(-scores[positive], kind="stable")[:n]]
        return Candidates.build(self.track_ids[top], scores[top], self.label)
