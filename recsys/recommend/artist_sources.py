"""Artist-level candidate sources: backing off from tracks to artists where tracks are thin.

In a sparse catalog most tracks appear in one or two playlists, so a track-level model
knows little about them, while their artists appear often. :class:`ArtistIndex` holds,
for the columns of a playlist×track matrix, each track's artist, the playlist×artist
matrix and every artist's tracks by popularity. Two sources use it:

- :class:`SeedArtistSource` (``seed_artists``): the popular tracks of the seeds' own
  artists, an artist weighing as much as its share of the seeds;
- :class:`ArtistNeighbourSource` (``artist_knn``): artists that share playlists with the
  seeds' artists (cosine over the playlist×artist matrix, the seeds' artists included),
  and their popular tracks.

A track's score is its artist's score times ``(count / artist's top count) ** 0.5``, so an
artist's popular tracks come first and tracks seen once still get a place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from recsys.collaborative.base import top_n
from recsys.collaborative.matrix import InteractionMatrix
from recsys.recommend.candidates import Candidates

NO_ARTIST = -1


class ArtistIndex:
    """Artists of a playlist×track matrix's columns, and what the artist sources need of them.

    ``artist_of``: catalog track id → catalog artist id (tracks without one are left out
    of every artist feature).
    """

    def __init__(self, matrix: InteractionMatrix, artist_of: Mapping[int, int | None]) -> None:
        ids = matrix.items.ids.tolist()
        artist_ids = np.array([artist_of.get(t) or NO_ARTIST for t in ids], dtype=np.int64)
        known = np.unique(artist_ids[artist_ids != NO_ARTIST])
        self.artist_ids = known  # (A,) catalog artist ids by column
        self.item_artist = np.full(len(ids), NO_ARTIST, dtype=np.int64)  # (I,) artist column or -1
        has = artist_ids != NO_ARTIST
        self.item_artist[has] = np.searchsorted(known, artist_ids[has])
        binary = matrix.matrix.copy().astype(np.float32)
        binary.data = np.ones_like(binary.data)
        self.item_counts = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)  # (I,)
        items = np.flatnonzero(has)
        membership = sparse.csr_matrix(
            (np.ones(len(items), dtype=np.float32), (items, self.item_artist[items])),
            shape=(len(ids), len(known)),
        )  # (I, A)
        playlist_artist = (binary @ membership).tocsr()  # (R, A) tracks of the artist per playlist
        playlist_artist.data = np.ones_like(playlist_artist.data)
        self.artist_playlists = playlist_artist.T.tocsr()  # (A, R) binary
        self.artist_counts = np.asarray(self.artist_playlists.sum(axis=1)).ravel().astype(np.float32)
        self._inv_norm = np.where(
            self.artist_counts > 0, 1.0 / np.sqrt(np.maximum(self.artist_counts, 1)), 0.0
        )
        # every artist's tracks, most played first (ties: lower column first)
        order = np.lexsort((items, -self.item_counts[items], self.item_artist[items]))
        self.tracks_by_artist = items[order]  # (I_known,)
        self.artist_start = np.searchsorted(
            self.item_artist[self.tracks_by_artist], np.arange(len(known) + 1)
        )
        top = np.zeros(len(known), dtype=np.float32)
        np.maximum.at(top, self.item_artist[items], self.item_counts[items])
        self.artist_top_count = top  # (A,)
        self.items = matrix.items

    def __len__(self) -> int:
        return int(self.artist_ids.shape[0])

    def seed_artists(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The seeds' artist columns and how many seeds each has, most first."""
        artists = self.item_artist[seeds]
        artists = artists[artists != NO_ARTIST]
        if len(artists) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        unique, counts = np.unique(artists, return_counts=True)
        order = np.lexsort((unique, -counts))
        return unique[order], counts[order].astype(np.float32)

    def artist_similarity(self, artists: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(A,) Σ_a w_a · cos(a, b) over the playlist×artist matrix (sharing playlists)."""
        w = weights * self._inv_norm[artists]
        rows = self.artist_playlists[artists].T @ w  # (R,)
        return (self.artist_playlists @ rows).astype(np.float32) * self._inv_norm.astype(np.float32)

    def cosine(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """(len(left), len(right)) dense cosine between artist columns."""
        co = (self.artist_playlists[left] @ self.artist_playlists[right].T).toarray()
        return (co * self._inv_norm[left][:, None] * self._inv_norm[right][None, :]).astype(np.float32)

    def track_weight(self, items: np.ndarray) -> np.ndarray:
        """(count / the artist's top count) ** 0.5 of each item (0 without an artist)."""
        artists = self.item_artist[items]
        top = np.where(artists >= 0, self.artist_top_count[np.maximum(artists, 0)], 1.0)
        return np.where(artists >= 0, np.sqrt(self.item_counts[items] / np.maximum(top, 1.0)), 0.0)

    def expand(
        self, artists: np.ndarray, scores: np.ndarray, n: int, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best tracks of ``artists`` scored artist score × track weight, best first."""
        if len(artists) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        slices = [
            self.tracks_by_artist[
                self.artist_start[a] : min(self.artist_start[a + 1], self.artist_start[a] + n + len(exclude))
            ]
            for a in artists
        ]
        items = np.concatenate(slices)
        artist_score = np.repeat(scores.astype(np.float32), [len(s) for s in slices])
        values = artist_score * self.track_weight(items).astype(np.float32)
        values[np.isin(items, exclude)] = -np.inf
        best = top_n(values, n)
        best = best[np.isfinite(values[best]) & (values[best] > 0)]
        return items[best], values[best]


class SeedArtistSource:
    """The popular tracks of the seeds' artists; each names the seeds by that artist."""

    name = "seed_artists"

    def __init__(self, index: ArtistIndex, *, label: str = "more by the seeds' artists") -> None:
        self.index = index
        self.label = label

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        known = np.unique(self.index.items.indices(seeds))
        artists, counts = self.index.seed_artists(known)
        if len(artists) == 0:
            return Candidates.none()
        items, scores = self.index.expand(artists, counts / counts.sum(), n, known)
        return Candidates.build(
            self.index.items.ids[items], scores, self.label, _because(self.index, known, items, artists, None)
        )


class ArtistNeighbourSource:
    """Tracks of the artists that share playlists with the seeds' artists (artist-kNN)."""

    name = "artist_knn"

    def __init__(
        self, index: ArtistIndex, *, artists: int = 100, label: str = "artists often listed with the seeds'"
    ) -> None:
        self.index = index
        self.top_artists = artists
        self.label = label

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        known = np.unique(self.index.items.indices(seeds))
        artists, counts = self.index.seed_artists(known)
        if len(artists) == 0:
            return Candidates.none()
        similarity = self.index.artist_similarity(artists, counts / counts.sum())
        best = top_n(similarity, self.top_artists)
        best = best[similarity[best] > 0]
        items, scores = self.index.expand(best, similarity[best], n, known)
        return Candidates.build(
            self.index.items.ids[items],
            scores,
            self.label,
            _because(self.index, known, items, artists, counts),
        )


def _because(
    index: ArtistIndex,
    seeds: np.ndarray,
    items: np.ndarray,
    seed_artists: np.ndarray,
    counts: np.ndarray | None,
    k: int = 2,
) -> np.ndarray:
    """(T, k) catalog ids of the seeds behind each candidate: seeds by the seed artist
    closest to the candidate's artist (its own artist when it is a seed artist), -1 padded."""
    out = np.full((len(items), k), -1, dtype=np.int64)
    if len(items) == 0:
        return out
    cand_artists = index.item_artist[items]
    if counts is None:
        driver = cand_artists
    else:
        closeness = index.cosine(np.unique(cand_artists), seed_artists) * counts[None, :]  # (U, SA)
        lookup = dict(
            zip(
                np.unique(cand_artists).tolist(),
                seed_artists[np.argmax(closeness, axis=1)].tolist(),
                strict=True,
            )
        )
        driver = np.array([lookup[a] for a in cand_artists.tolist()], dtype=np.int64)
    seed_artist = index.item_artist[seeds]
    by_artist: dict[int, list[int]] = {}
    for seed, artist in zip(index.items.ids[seeds].tolist(), seed_artist.tolist(), strict=True):
        if len(by_artist.setdefault(artist, [])) < k:
            by_artist[artist].append(seed)
    for i, artist in enumerate(driver.tolist()):
        chosen = by_artist.get(artist, [])
        out[i, : len(chosen)] = chosen
    return out
