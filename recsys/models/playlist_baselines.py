"""Bag-of-tracks playlist encoders, the baselines of the seq2seq encoder, and a random control.

- :func:`item2vec_vectors`: track vectors "trained on the playlists" in the item2vec
  sense, computed as the factorisation that skip-gram with negative sampling performs
  implicitly (Levy & Goldberg, 2014): a truncated (randomised) SVD of the positive pointwise mutual
  information of tracks that co-occur within ``window`` positions of each other
  (context counts smoothed with exponent 0.75). Deterministic, seconds on the CPU.
- :class:`SifEncoder`: smooth inverse frequency (Arora et al., 2017): the average of the
  track vectors weighted by ``a / (a + p(track))``, minus its projection on the first
  principal component of the training playlists' averages.
- :class:`MeanVectorEncoder`: the plain mean of given track vectors (``mean-als`` with
  ALS item factors).
- :class:`RandomEncoder`: a random vector per distinct playlist (seeded by its content):
  the floor every probe should beat.

Tracks without a vector are skipped; a playlist with none of its tracks known gets
the zero vector (SIF: the zero vector too, before and after the projection).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_limits


def _index(track_ids: np.ndarray) -> dict[int, int]:
    return {int(t): i for i, t in enumerate(track_ids)}


def item2vec_vectors(
    playlists: Sequence[Sequence[int]],
    *,
    dim: int = 64,
    window: int = 5,
    min_count: int = 2,
    smoothing: float = 0.75,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(track_ids (V,), vectors (V, dim)) for the tracks seen at least ``min_count`` times."""
    counts: dict[int, int] = {}
    for playlist in playlists:
        for t in playlist:
            counts[int(t)] = counts.get(int(t), 0) + 1
    track_ids = np.asarray(sorted(t for t, c in counts.items() if c >= min_count), dtype=np.int64)
    index = _index(track_ids)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for playlist in playlists:
        tokens = np.asarray([index.get(int(t), -1) for t in playlist], dtype=np.int64)
        for offset in range(1, window + 1):
            if len(tokens) <= offset:
                break
            a, b = tokens[:-offset], tokens[offset:]
            keep = (a >= 0) & (b >= 0) & (a != b)
            rows += [a[keep], b[keep]]
            cols += [b[keep], a[keep]]
    n = len(track_ids)
    if n == 0:
        return track_ids, np.zeros((0, dim), dtype=np.float32)
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    cooc = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    cooc.sum_duplicates()
    total = cooc.sum()
    row_sum = np.asarray(cooc.sum(axis=1)).ravel()  # (V,)
    context = np.asarray(cooc.sum(axis=0)).ravel() ** smoothing  # (V,)
    context /= max(context.sum(), 1e-12)
    coo = cooc.tocoo()
    pmi = np.log(
        coo.data * 1.0 / (row_sum[coo.row] / max(total, 1e-12)) / context[coo.col] / max(total, 1e-12)
    )
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    k = min(dim, n - 1)
    if k < 1 or ppmi.nnz == 0:
        vectors = np.zeros((n, dim), dtype=np.float32)
        return track_ids, vectors
    with threadpool_limits(1):  # small dense blocks: BLAS threads only wait on each other
        u, s, _ = randomized_svd(ppmi, n_components=k, n_iter=3, random_state=seed)  # largest first
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(k)])  # fix each component's sign
    vectors = np.zeros((n, dim), dtype=np.float32)
    vectors[:, :k] = u * signs * np.sqrt(s)
    return track_ids, vectors


class MeanVectorEncoder:
    """The mean of the vectors of a playlist's known tracks."""

    def __init__(self, name: str, track_ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(track_ids) != len(vectors):
            raise ValueError(f"{len(track_ids)} track ids but {len(vectors)} vectors")
        self.name = name
        self.track_ids = np.asarray(track_ids, dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self._index = _index(self.track_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        return np.ones(len(rows), dtype=np.float64)

    def _average(self, playlists: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(playlists), self.dim), dtype=np.float64)  # (N, D)
        for i, playlist in enumerate(playlists):
            rows = np.asarray(
                [self._index[t] for t in map(int, playlist) if t in self._index], dtype=np.int64
            )
            if len(rows):  # over the known tracks
                out[i] = self._weights(rows) @ self.vectors[rows] / len(rows)
        return out

    def embed(self, playlists: Sequence[Sequence[int]]) -> np.ndarray:
        return self._average(playlists).astype(np.float32)


class SifEncoder(MeanVectorEncoder):
    """Smooth-inverse-frequency weighted bag of track vectors minus the first principal component."""

    def __init__(
        self,
        track_ids: np.ndarray,
        vectors: np.ndarray,
        frequencies: np.ndarray,
        training_playlists: Sequence[Sequence[int]],
        *,
        a: float = 1e-3,
        name: str = "sif",
    ) -> None:
        super().__init__(name, track_ids, vectors)
        freq = np.asarray(frequencies, dtype=np.float64)
        self.weights = a / (a + freq / max(freq.sum(), 1e-12))  # (V,)
        averages = self._average(training_playlists)  # (N, D)
        _, _, vt = np.linalg.svd(averages, full_matrices=False)
        self.component = vt[0] if len(vt) else np.zeros(self.dim)  # (D,)

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        return self.weights[rows]

    def embed(self, playlists: Sequence[Sequence[int]]) -> np.ndarray:
        averages = self._average(playlists)  # (N, D)
        return (averages - np.outer(averages @ self.component, self.component)).astype(np.float32)


def track_frequencies(playlists: Sequence[Sequence[int]], track_ids: np.ndarray) -> np.ndarray:
    """How often each of ``track_ids`` occurs in ``playlists``."""
    index = _index(track_ids)
    freq = np.zeros(len(track_ids), dtype=np.int64)
    for playlist in playlists:
        for t in playlist:
            i = index.get(int(t))
            if i is not None:
                freq[i] += 1
    return freq


def fit_sif(
    playlists: Sequence[Sequence[int]], *, dim: int = 64, window: int = 5, seed: int = 0
) -> SifEncoder:
    """item2vec-style vectors from ``playlists``, then the SIF encoder over them."""
    track_ids, vectors = item2vec_vectors(playlists, dim=dim, window=window, seed=seed)
    return SifEncoder(track_ids, vectors, track_frequencies(playlists, track_ids), playlists)


class RandomEncoder:
    """A random Gaussian vector per distinct playlist content: the chance-level control."""

    def __init__(self, dim: int = 64, seed: int = 0, name: str = "random") -> None:
        self.name = name
        self._dim = dim
        self.seed = seed

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, playlists: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(playlists), self._dim), dtype=np.float32)
        for i, playlist in enumerate(playlists):
            digest = hashlib.sha256(np.asarray(playlist, dtype=np.int64).tobytes()).digest()
            key = int.from_bytes(digest[:8], "little") ^ self.seed
            out[i] = np.random.default_rng(key).standard_normal(self._dim)
        return out
