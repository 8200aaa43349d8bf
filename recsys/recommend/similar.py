"""Neighbours in the vector store: tracks that sound like a track, playlists like a playlist,
and a 2-D map of a collection's vectors.

Tracks are compared by one of their named vectors in ``tracks``: ``audio`` (CultureMERT),
``audio_dsp`` (the weight-free descriptor) or ``music`` (the video–music model's music
tower), which hear the music; or ``cf`` (ALS item factors) and ``seq2seq`` (the playlist
encoder's track vectors), which know the playlists it is in. Playlists by one of theirs in ``playlists``: ``seq2seq`` (the encoder), ``sif``
(SIF bag of tracks) or ``mean_als`` (the mean of ALS item factors).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.errors import NotFoundError
from recsys.recommend.filters import track_filter
from recsys.vectorstore.base import Filter, Match, VectorStore
from recsys.vectorstore.collections import PLAYLISTS, TRACKS

# What ``--by`` accepts, and the named vector each one searches: three that hear the music
# and two that know who plays it with what (ALS item factors, the playlist encoder's tracks).
SIMILARITY_VECTORS = {
    "audio": "audio",
    "audio_dsp": "audio_dsp",
    "dsp": "audio_dsp",
    "music": "music",
    "cf": "cf",
    "seq2seq": "seq2seq",
}
PLAYLIST_VECTORS = ("seq2seq", "sif", "mean_als")
MAP_SAMPLE = 5_000  # points drawn on a map at most


@dataclass(frozen=True)
class SimilarTrack:
    track_id: int
    score: float
    title: str | None
    artist: str | None
    cultures: list[str]
    genres: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "score": round(self.score, 6),
            "title": self.title,
            "artist": self.artist,
            "cultures": self.cultures,
            "genres": self.genres,
        }


def available_vectors(store: VectorStore, collection: str = TRACKS) -> dict[str, int]:
    """The named vectors of ``collection`` that some point holds, with how many points hold each."""
    if not store.has_collection(collection):
        return {}
    counts = {v.name: store.count(collection, vector=v.name) for v in store.spec(collection).vectors}
    return {name: n for name, n in counts.items() if n}


def holding_vector(store: VectorStore, ids: list[int], vector: str, collection: str = TRACKS) -> list[int]:
    """Those of ``ids`` (catalog ids, the point ids) whose point holds ``vector``, in the order given."""
    if not ids or not store.has_collection(collection):
        return []
    held = {
        int(r.id) for r in store.retrieve(collection, ids, with_vectors=[vector]) if r.vectors.get(vector)
    }
    return [i for i in ids if i in held]


@dataclass(frozen=True)
class VectorTrack:
    track_id: int
    title: str | None
    artist: str | None


def tracks_holding(store: VectorStore, vector: str, *, limit: int = 25) -> list[VectorTrack]:
    """Some tracks (the first ``limit`` by id) whose point holds ``vector``: where to start browsing."""
    if not store.has_collection(TRACKS):
        return []
    return [
        VectorTrack(int(r.payload.get("track_id", r.id)), r.payload.get("title"), r.payload.get("artist"))
        for r in store.first(TRACKS, limit, vector=vector)
    ]


def similar_tracks(
    store: VectorStore,
    track_id: int,
    *,
    by: str = "audio",
    culture: str | None = None,
    filters: Mapping[str, str] | None = None,
    n: int = 10,
) -> list[SimilarTrack]:
    """The ``n`` tracks nearest to ``track_id`` by the ``by`` vector, never the track itself.

    ``culture`` keeps only tracks tagged with it; ``filters`` are payload filters as
    :func:`~recsys.recommend.filters.track_filter` reads them (``{"genre": "jazz"}``).
    Raises ``NotFoundError`` when the track has no such vector (not embedded yet) or the
    collection does not exist.
    """
    if by not in SIMILARITY_VECTORS:
        raise ValueError(f"--by must be one of {', '.join(SIMILARITY_VECTORS)}, not {by!r}")
    using = SIMILARITY_VECTORS[by]
    wanted = dict(filters or {})
    if culture:
        wanted["culture"] = culture
    flt = track_filter(wanted)
    hits = store.recommend(TRACKS, using=using, positive=[track_id], filter=flt, limit=n)
    return [
        SimilarTrack(
            track_id=int(hit.payload.get("track_id", hit.id)),
            score=float(hit.score),
            title=hit.payload.get("title"),
            artist=hit.payload.get("artist"),
            cultures=list(hit.payload.get("cultures") or []),
            genres=list(hit.payload.get("genres") or []),
        )
        for hit in hits
    ]


@dataclass(frozen=True)
class SimilarPlaylist:
    playlist_id: int
    score: float
    name: str | None
    num_tracks: int | None


def similar_playlists(
    store: VectorStore, playlist_id: int, *, by: str = "seq2seq", namespace: str | None = None, n: int = 10
) -> list[SimilarPlaylist]:
    """The ``n`` playlists nearest to ``playlist_id`` by its ``by`` vector, never the playlist itself."""
    if by not in PLAYLIST_VECTORS:
        raise ValueError(f"playlist vectors are {', '.join(PLAYLIST_VECTORS)}, not {by!r}")
    flt = Filter.where(Match("namespace", namespace)) if namespace else None
    hits = store.recommend(PLAYLISTS, using=by, positive=[playlist_id], filter=flt, limit=n)
    return [
        SimilarPlaylist(
            playlist_id=int(hit.payload.get("playlist_id", hit.id)),
            score=float(hit.score),
            name=hit.payload.get("name"),
            num_tracks=hit.payload.get("num_tracks"),
        )
        for hit in hits
    ]


@dataclass(frozen=True)
class VectorMap:
    """Points of a collection projected to 2-D (PCA): ids, coordinates and their payloads."""

    collection: str
    vector: str
    ids: list[int]
    xy: np.ndarray  # (N, 2)
    payloads: list[dict[str, Any]]
    total: int  # points holding the vector; more than len(ids) when sampled
    explained: tuple[float, float]  # share of the variance along each axis


def vector_map(
    store: VectorStore, collection: str, vector: str, *, sample: int = MAP_SAMPLE, seed: int = 0
) -> VectorMap:
    """A 2-D map of the ``vector`` of every point of ``collection``, or of a seeded sample of
    ``sample`` of them, by principal components (the same points and axes for the same data)."""
    if not store.has_collection(collection):
        raise NotFoundError(f"the vector store has no {collection!r} collection yet")
    rng = random.Random(seed)
    kept: list[tuple[int, list[float], dict[str, Any]]] = []
    seen = 0
    for record in store.scroll(collection, with_vectors=[vector]):
        values = record.vectors.get(vector)
        if not values:
            continue
        seen += 1
        item = (
            int(record.payload.get("track_id", record.payload.get("playlist_id", record.id))),
            values,
            record.payload,
        )
        if len(kept) < sample:
            kept.append(item)
        else:  # reservoir sampling: every point has the same chance, memory stays bounded
            j = rng.randrange(seen)
            if j < sample:
                kept[j] = item
    if not kept:
        raise NotFoundError(f"no point of {collection!r} has a {vector!r} vector yet")
    kept.sort(key=lambda item: item[0])
    matrix = np.asarray([values for _, values, _ in kept], dtype=np.float64)  # (N, D)
    centred = matrix - matrix.mean(axis=0)
    if len(kept) < 2:
        xy, explained = np.zeros((len(kept), 2)), (0.0, 0.0)
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]  # (2, D)
        xy = centred @ axes.T  # (N, 2)
        if xy.shape[1] < 2:
            xy = np.hstack([xy, np.zeros((len(kept), 1))])
        variance = singular**2
        share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
        explained = (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)
    return VectorMap(
        collection,
        vector,
        [i for i, _, _ in kept],
        np.asarray(xy, dtype=np.float32),
        [payload for _, _, payload in kept],
        seen,
        explained,
    )
