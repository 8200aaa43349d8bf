"""Baselines beside the factorisation models: popularity and item co-occurrence kNN."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsys.collaborative.base import seed_weights
from recsys.collaborative.matrix import InteractionMatrix


class Popularity:
    """Scores every item by how many rows hold it; the seeds do not matter."""

    name = "popularity"

    def __init__(self) -> None:
        self._counts: np.ndarray | None = None

    def fit(self, matrix: InteractionMatrix) -> None:
        self._counts = matrix.item_counts().astype(np.float32)

    @property
    def counts(self) -> np.ndarray:
        if self._counts is None:
            raise RuntimeError("Popularity.fit() was not called")
        return self._counts

    def scores(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return self.counts.copy()

    def explain(
        self, seeds: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        return np.zeros((len(targets), len(seeds)), dtype=np.float32)


class ItemKNN:
    """Item co-occurrence kNN with cosine similarity, computed on demand.

    sim(i, j) = |rows holding i and j| / sqrt(|rows holding i| · |rows holding j|). The score
    of item j for seeds S is Σ_{i∈S} w_i · sim(i, j), evaluated as two sparse products
    (seeds → rows → items) instead of materialising the item×item matrix, so memory stays
    linear in the interactions and every co-occurring item is a neighbour.
    ``row_decay`` down-weights long rows (a row of length L counts 1/L^row_decay).
    """

    name = "knn"

    def __init__(self, row_decay: float = 0.0) -> None:
        self.row_decay = row_decay
        self._xt: sparse.csr_matrix | None = None
        self._inv_norm: np.ndarray | None = None

    def fit(self, matrix: InteractionMatrix) -> None:
        x = matrix.matrix.copy().astype(np.float32)
        x.data = np.ones_like(x.data)
        lengths = np.asarray(x.sum(axis=1)).ravel()
        if self.row_decay:
            row_weight = np.power(np.maximum(lengths, 1.0), -self.row_decay).astype(np.float32)
            x = sparse.diags(np.sqrt(row_weight)) @ x
        counts = np.asarray(x.multiply(x).sum(axis=0)).ravel()
        self._inv_norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1e-12)), 0.0).astype(
            np.float32
        )
        self._xt = x.T.tocsr()

    def _fitted(self) -> tuple[sparse.csr_matrix, np.ndarray]:
        if self._xt is None or self._inv_norm is None:
            raise RuntimeError("ItemKNN.fit() was not called")
        return self._xt, self._inv_norm

    def scores(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        xt, inv_norm = self._fitted()
        seeds = np.asarray(seeds, dtype=np.int64)
        w = seed_weights(seeds, weights) * inv_norm[seeds]
        # rows holding the seeds, weighted: (R,) = X[:, S] @ w
        rows = xt[seeds].T @ w
        return (xt @ rows).astype(np.float32) * inv_norm

    def similarity(self, targets: np.ndarray, others: np.ndarray) -> sparse.csr_matrix:
        """(len(targets), len(others)) cosine similarity of item indices, sparse (0 where never together)."""
        xt, inv_norm = self._fitted()
        targets = np.asarray(targets, dtype=np.int64)
        others = np.asarray(others, dtype=np.int64)
        cooc = (xt[targets] @ xt[others].T).tocsr()  # (T, O)
        return (sparse.diags(inv_norm[targets]) @ cooc @ sparse.diags(inv_norm[others])).tocsr()

    def explain(
        self, seeds: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        xt, inv_norm = self._fitted()
        seeds = np.asarray(seeds, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        w = seed_weights(seeds, weights)
        cooc = (xt[targets] @ xt[seeds].T).toarray()  # (T, S)
        return (cooc * inv_norm[targets][:, None] * (inv_norm[seeds] * w)[None, :]).astype(np.float32)


class PlaylistKNN:
    """Playlist (user) kNN: the training playlists most like the seeds vote for their tracks.

    A row r's similarity to the seeds S is |r ∩ S| / (|r|^α · |S|^(1−α)); the
    ``neighbours`` most similar rows vote for their items with similarity^``power``.
    Seeds shared with many rows thus count through the rows, not through item pairs,
    which item-kNN misses when a track co-occurs with each seed only once or twice.
    """

    name = "playlist_knn"

    def __init__(self, neighbours: int = 100, alpha: float = 0.5, power: float = 2.0) -> None:
        self.neighbours = neighbours
        self.alpha = alpha
        self.power = power
        self._xt: sparse.csr_matrix | None = None
        self._row_norm: np.ndarray | None = None

    def fit(self, matrix: InteractionMatrix) -> None:
        x = matrix.matrix.copy().astype(np.float32)
        x.data = np.ones_like(x.data)
        lengths = np.asarray(x.sum(axis=1)).ravel()
        self._row_norm = np.power(np.maximum(lengths, 1.0), -self.alpha).astype(np.float32)
        self._xt = x.T.tocsr()  # (I, R)

    def _fitted(self) -> tuple[sparse.csr_matrix, np.ndarray]:
        if self._xt is None or self._row_norm is None:
            raise RuntimeError("PlaylistKNN.fit() was not called")
        return self._xt, self._row_norm

    def _row_weights(self, seeds: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        xt, row_norm = self._fitted()
        seeds = np.asarray(seeds, dtype=np.int64)
        w = seed_weights(seeds, weights)
        overlap = xt[seeds].T @ w  # (R,)
        similarity = overlap * row_norm / max(float(w.sum()), 1.0) ** (1.0 - self.alpha)
        out = np.zeros_like(similarity, dtype=np.float32)
        if len(similarity) == 0:
            return out
        k = min(self.neighbours, len(similarity))
        best = np.argpartition(-similarity, k - 1)[:k]
        best = best[similarity[best] > 0]
        out[best] = np.power(similarity[best], self.power)
        return out

    def scores(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        rows = self._row_weights(seeds, weights)
        return np.asarray(self._fitted()[0] @ rows, dtype=np.float32).ravel()

    def explain(
        self, seeds: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Each neighbour row's vote for a target split among the seeds it holds, by seed
        weight, so that a target's contributions add up to its score."""
        rows = self._row_weights(seeds, weights)
        xt = self._fitted()[0]
        seeds = np.asarray(seeds, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        w = seed_weights(seeds, weights)
        overlap = np.asarray(xt[seeds].T @ w).ravel()  # (R,) weighted seeds per row
        share = np.where(overlap > 0, rows / np.maximum(overlap, 1e-12), 0.0).astype(np.float32)
        weighted = xt[targets].multiply(share[None, :]).tocsr()  # (T, R)
        return ((weighted @ xt[seeds].T).toarray() * w[None, :]).astype(np.float32)  # (T, S)
