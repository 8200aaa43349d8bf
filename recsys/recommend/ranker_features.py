"""Features of (playlist, candidate) pairs for the learned ranker.

:class:`PairFeatures` is built from the training playlist×track matrix, its
:class:`~recsys.recommend.artist_sources.ArtistIndex`, the tracks' titles and the
factorisation model; ``build`` turns one request's candidate lists into a matrix with one
row per pooled candidate and the columns of :data:`FEATURES`, grouped (for the ablation)
in :data:`FEATURE_GROUPS`:

- ``sources``: each source's score and rank of the candidate, and the score as a share of
  the source's best for this request (NaN where it did not propose it);
- ``fusion``: the reciprocal-rank-fusion score the pool was cut by, and how many sources proposed it;
- ``popularity``: how many playlists hold the track and its artist, and the track's share
  of its artist's top count;
- ``artist``: how many seeds share the candidate's artist (and which share of the seeds),
  and the artist's cosine to the seeds' artists;
- ``cooccurrence``: playlists holding the candidate with any seed, the most with one
  seed, how many seeds it was ever listed with, and the item-kNN cosine score;
- ``embedding``: the factorisation model's fold-in score and the cosine of the candidate's
  factors to the mean of the seeds';
- ``similarity`` (features of the RecSys Challenge 2018's winners): the item-kNN cosine
  (co-occurrence / √(pop_c·pop_s)) to the most similar seed and its mean over the seeds
  and over the last :data:`LAST_SEEDS` seeds (a playlist continues what it ended with),
  the factor cosine to the last seeds' mean, the fold-in score's rank within the request
  (as a share of the pool), the share of the seeds' nearest training playlists
  (:data:`NEIGHBOURS`, similarity |r ∩ S| / √(|r|·|S|)) holding the candidate, and its
  popularity against the seeds' mean (log counts);
- ``context``: the number of seeds, whether there is a title, and title words found in
  the candidate's title or artist name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsys.collaborative.matrix import InteractionMatrix, ItemMap
from recsys.recommend.artist_sources import ArtistIndex
from recsys.recommend.candidates import Candidates, title_key

SOURCES = ("als", "knn", "playlist_knn", "title", "popularity", "artist_knn", "seed_artists")
ARTIST_SOURCES = ("artist_knn", "seed_artists")
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "sources": tuple(f"{s}_{kind}" for s in SOURCES for kind in ("score", "rank", "relative")),
    "fusion": ("rrf", "n_sources"),
    "popularity": ("log_count", "log_artist_count", "artist_share"),
    "artist": ("seed_artist_count", "seed_artist_share", "artist_cosine"),
    "cooccurrence": ("cooc_sum", "cooc_max", "cooc_seeds", "knn_cosine"),
    "embedding": ("mf_score", "mf_cosine"),
    "context": ("n_seeds", "has_title", "title_words"),
    "similarity": (
        "knn_max",
        "knn_mean",
        "knn_last",
        "mf_cosine_last",
        "mf_rank",
        "neighbour_share",
        "pop_vs_seeds",
    ),
}
LAST_SEEDS = 5  # the seeds that end the playlist, for the "last" features
NEIGHBOURS = 100  # training playlists most like the seeds, for neighbour_share
FEATURES: tuple[str, ...] = tuple(name for names in FEATURE_GROUPS.values() for name in names)


class PairFeatures:
    """Computes :data:`FEATURES` for pooled candidates; fitted once on the training matrix.

    ``titles``: catalog track id → (title, artist name); ``factorization``: a fitted
    :class:`~recsys.collaborative.factorization.MatrixFactorization` with its own id map
    (None: the embedding features are NaN).
    """

    def __init__(
        self,
        matrix: InteractionMatrix,
        index: ArtistIndex,
        titles: Mapping[int, tuple[str, str]],
        factorization: Any = None,
        factor_items: ItemMap | None = None,
    ) -> None:
        binary = matrix.matrix.copy().astype(np.float32)
        binary.data = np.ones_like(binary.data)
        self.xt = binary.T.tocsr()  # (I, R)
        lengths = np.asarray(binary.sum(axis=1)).ravel()
        self.row_inv_norm = 1.0 / np.sqrt(np.maximum(lengths, 1.0)).astype(np.float32)  # (R,)
        counts = index.item_counts
        self.inv_norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0).astype(np.float32)
        self.items = matrix.items
        self.index = index
        self.words = [
            frozenset(title_key(f"{title} {artist}").split())
            for title, artist in (titles.get(int(t), ("", "")) for t in matrix.items.ids.tolist())
        ]
        self.factorization = factorization
        self.factor_items = factor_items
        self._unit_factors: np.ndarray | None = None
        if factorization is not None:
            factors = np.asarray(factorization.item_factors, dtype=np.float32)
            norms = np.linalg.norm(factors, axis=1, keepdims=True)
            self._unit_factors = factors / np.maximum(norms, 1e-9)

    def build(
        self,
        lists: Mapping[str, Candidates],
        pool: np.ndarray,
        rrf: np.ndarray,
        seeds: Sequence[int],
        title: str | None,
    ) -> np.ndarray:
        """(C, F) features of the ``pool`` (catalog ids, with their fusion scores ``rrf``)."""
        c = len(pool)
        out = np.full((c, len(FEATURES)), np.nan, dtype=np.float32)
        column = {name: i for i, name in enumerate(FEATURES)}
        n_sources = np.zeros(c, dtype=np.float32)
        for source in SOURCES:
            candidates = lists.get(source)
            if candidates is None or len(candidates) == 0:
                continue
            position = _positions(candidates.track_ids, pool)  # (C,) -1 = absent
            found = position >= 0
            out[found, column[f"{source}_score"]] = candidates.scores[position[found]]
            out[found, column[f"{source}_rank"]] = position[found] + 1
            top = float(candidates.scores[0])
            if top > 0:
                out[found, column[f"{source}_relative"]] = candidates.scores[position[found]] / top
            n_sources += found
        out[:, column["rrf"]] = rrf
        out[:, column["n_sources"]] = n_sources
        lookup = self.items._index  # type: ignore[attr-defined]
        idx = np.fromiter((lookup.get(int(t), -1) for t in pool.tolist()), dtype=np.int64, count=c)
        known = idx >= 0
        items = idx[known]
        seed_idx = np.unique(self.items.indices(seeds))
        self._popularity(out, column, known, items)
        self._artist(out, column, known, items, seed_idx)
        self._cooccurrence(out, column, known, items, seed_idx)
        self._embedding(out, column, pool, seeds)
        self._similarity(out, column, known, items, seed_idx, seeds)
        out[:, column["n_seeds"]] = len(seeds)
        out[:, column["has_title"]] = 1.0 if title else 0.0
        words = frozenset(title_key(title).split()) if title else frozenset()
        if words:
            values = np.zeros(c, dtype=np.float32)
            values[known] = [len(words & self.words[i]) for i in items.tolist()]
            out[:, column["title_words"]] = values
        return out

    def _popularity(
        self, out: np.ndarray, column: dict[str, int], known: np.ndarray, items: np.ndarray
    ) -> None:
        index = self.index
        counts = index.item_counts[items]
        artists = index.item_artist[items]
        has = artists >= 0
        a = np.maximum(artists, 0)
        out[known, column["log_count"]] = np.log1p(counts)
        out[known, column["log_artist_count"]] = np.where(has, np.log1p(index.artist_counts[a]), np.nan)
        out[known, column["artist_share"]] = np.where(
            has, counts / np.maximum(index.artist_top_count[a], 1), np.nan
        )

    def _artist(
        self, out: np.ndarray, column: dict[str, int], known: np.ndarray, items: np.ndarray, seeds: np.ndarray
    ) -> None:
        index = self.index
        seed_artists, counts = index.seed_artists(seeds)
        artists = index.item_artist[items]
        has = artists >= 0
        share = np.zeros(len(items), dtype=np.float32)
        how_many = np.zeros(len(items), dtype=np.float32)
        cosine = np.zeros(len(items), dtype=np.float32)
        if len(seed_artists):
            lookup = dict(zip(seed_artists.tolist(), counts.tolist(), strict=True))
            how_many = np.array([lookup.get(a, 0.0) for a in artists.tolist()], dtype=np.float32)
            share = (how_many / max(len(seeds), 1)).astype(np.float32)
            unique, inverse = np.unique(np.maximum(artists, 0), return_inverse=True)
            weights = counts / counts.sum()
            cosine = (index.cosine(unique, seed_artists) @ weights)[inverse].astype(np.float32)
        out[known, column["seed_artist_count"]] = np.where(has, how_many, np.nan)
        out[known, column["seed_artist_share"]] = np.where(has, share, np.nan)
        out[known, column["artist_cosine"]] = np.where(has, cosine, np.nan)

    def _cooccurrence(
        self, out: np.ndarray, column: dict[str, int], known: np.ndarray, items: np.ndarray, seeds: np.ndarray
    ) -> None:
        if len(seeds) == 0:
            return
        seed_rows = self.xt[seeds]  # (S, R)
        pair = (self.xt[items] @ seed_rows.T).tocsr()  # (C, S) playlists holding both
        rows = np.asarray(seed_rows.sum(axis=0)).ravel()  # (R,) seeds per playlist
        holding = (rows > 0).astype(np.float32)
        out[known, column["cooc_sum"]] = self.xt[items] @ holding
        out[known, column["cooc_max"]] = pair.max(axis=1).toarray().ravel()
        out[known, column["cooc_seeds"]] = np.diff(pair.indptr)
        weighted = (self.xt[items] @ (seed_rows.T @ self.inv_norm[seeds])) * self.inv_norm[items]
        out[known, column["knn_cosine"]] = weighted

    def _embedding(
        self, out: np.ndarray, column: dict[str, int], pool: np.ndarray, seeds: Sequence[int]
    ) -> None:
        if self.factorization is None or self.factor_items is None or self._unit_factors is None:
            return
        seed_idx = np.unique(self.factor_items.indices(seeds))
        if len(seed_idx) == 0:
            return
        lookup = self.factor_items._index  # type: ignore[attr-defined]
        idx = np.fromiter((lookup.get(int(t), -1) for t in pool.tolist()), dtype=np.int64, count=len(pool))
        has = idx >= 0
        factors = np.asarray(self.factorization.item_factors, dtype=np.float32)
        user = self.factorization.user_vector(seed_idx)
        out[has, column["mf_score"]] = factors[idx[has]] @ user
        mean = self._unit_factors[seed_idx].mean(axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-9)
        out[has, column["mf_cosine"]] = self._unit_factors[idx[has]] @ mean
        last = self.factor_items.indices(seeds[-LAST_SEEDS:])
        if len(last):
            mean = self._unit_factors[np.unique(last)].mean(axis=0)
            mean /= max(float(np.linalg.norm(mean)), 1e-9)
            out[has, column["mf_cosine_last"]] = self._unit_factors[idx[has]] @ mean
        scores = out[has, column["mf_score"]]
        if len(scores):
            rank = np.empty(len(scores), dtype=np.float32)
            rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
            out[has, column["mf_rank"]] = rank / len(pool)

    def _similarity(
        self,
        out: np.ndarray,
        column: dict[str, int],
        known: np.ndarray,
        items: np.ndarray,
        seed_idx: np.ndarray,
        seeds: Sequence[int],
    ) -> None:
        if len(seed_idx) == 0:
            return
        candidates = self.xt[items]  # (C, R)
        inv = self.inv_norm
        pair = (candidates @ self.xt[seed_idx].T).tocsr()  # (C, S) playlists holding both
        pair = pair.multiply(inv[items][:, None]).multiply(inv[seed_idx][None, :]).tocsr()
        out[known, column["knn_max"]] = pair.max(axis=1).toarray().ravel()
        out[known, column["knn_mean"]] = np.asarray(pair.sum(axis=1)).ravel() / len(seed_idx)
        last = np.unique(self.items.indices(seeds[-LAST_SEEDS:]))
        if len(last):  # else NaN: the last seeds are unknown to the matrix
            weighted = candidates @ (self.xt[last].T @ inv[last])  # (C,)
            out[known, column["knn_last"]] = weighted * inv[items] / len(last)
        overlap = np.asarray(self.xt[seed_idx].sum(axis=0)).ravel()  # (R,) seeds per playlist
        similarity = overlap * self.row_inv_norm / np.sqrt(len(seed_idx))
        k = min(NEIGHBOURS, int((similarity > 0).sum()))
        if k:
            best = np.argpartition(-similarity, k - 1)[:k]
            chosen = np.zeros(len(similarity), dtype=np.float32)
            chosen[best] = 1.0
            out[known, column["neighbour_share"]] = (candidates @ chosen) / k
        counts = self.index.item_counts
        out[known, column["pop_vs_seeds"]] = np.log1p(counts[items]) - float(
            np.log1p(counts[seed_idx]).mean()
        )


def _positions(ids: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each pool id, its position in ``ids`` (-1 when absent)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    at = np.searchsorted(sorted_ids, pool)
    at = np.minimum(at, len(ids) - 1)
    found = sorted_ids[at] == pool
    return np.where(found, order[at], -1)


def column_mask(drop_groups: Sequence[str] = (), drop_sources: Sequence[str] = ()) -> np.ndarray:
    """(F,) booleans: the feature columns kept when ``drop_groups`` and the score/rank
    columns of ``drop_sources`` are left out (the ablation)."""
    unknown = sorted(set(drop_groups) - set(FEATURE_GROUPS))
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}: choose from {sorted(FEATURE_GROUPS)}")
    dropped = {name for g in drop_groups for name in FEATURE_GROUPS[g]}
    dropped |= {f"{s}_{kind}" for s in drop_sources for kind in ("score", "rank", "relative")}
    return np.array([name not in dropped for name in FEATURES])
