"""Neighbours in the store: similar tracks and playlists, which tracks hold a vector, the 2-D map.

Planted: tracks in three tight clusters of ``audio_dsp`` (ids 1-10, 11-20, 21-30), every third
track also holding ``music``; playlists in two clusters of ``sif``. Run on both store backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recsys.errors import NotFoundError
from recsys.recommend.similar import (
    available_vectors,
    holding_vector,
    similar_playlists,
    similar_tracks,
    tracks_holding,
    vector_map,
)
from recsys.vectorstore import Point, VectorStore
from recsys.vectorstore.collections import PLAYLISTS, TRACKS, playlists_spec, tracks_spec
from tests.vectorstore.conftest import make_store

CULTURES = ["indian", "greek", "turkish"]


def _tracks() -> list[Point]:
    rng = np.random.default_rng(3)
    centres = np.eye(128, dtype=np.float32)[:3] * 10
    points = []
    for i in range(1, 31):
        cluster = (i - 1) // 10
        vectors = {"audio_dsp": centres[cluster] + rng.normal(0, 0.2, 128).astype(np.float32)}
        if i % 3 == 0:
            vectors["music"] = rng.normal(size=128).astype(np.float32)
        payload = {
            "track_id": i,
            "title": f"track {i}",
            "artist": f"artist {cluster}",
            "cultures": [CULTURES[cluster]],
            "genres": ["folk" if i % 2 else "dance"],
        }
        points.append(Point(i, vectors, payload))
    return points


def _playlists() -> list[Point]:
    rng = np.random.default_rng(4)
    centres = np.eye(64, dtype=np.float32)[:2] * 10
    return [
        Point(
            p,
            {"sif": centres[p % 2] + rng.normal(0, 0.2, 64).astype(np.float32)},
            {"playlist_id": p, "name": f"list {p}", "namespace": "catalog", "num_tracks": 10 + p},
        )
        for p in range(1, 21)
    ]


@pytest.fixture(params=["edge", "client"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store = make_store(request.param, tmp_path)
    store.rebuild(tracks_spec(), _tracks())
    store.rebuild(playlists_spec(), _playlists())
    yield store
    store.close()


def test_available_vectors_counts_the_points_holding_each(store: VectorStore) -> None:
    assert available_vectors(store, TRACKS) == {"audio_dsp": 30, "music": 10}
    assert available_vectors(store, PLAYLISTS) == {"sif": 20}
    assert available_vectors(store, "nothing") == {}


def test_similar_tracks_stay_in_their_cluster_and_obey_filters(store: VectorStore) -> None:
    found = similar_tracks(store, 5, by="dsp", n=9)
    assert {t.track_id for t in found} == set(range(1, 11)) - {5}
    folk = similar_tracks(store, 5, by="audio_dsp", filters={"genre": "FOLK"}, n=20)
    assert folk and all("folk" in t.genres for t in folk) and 5 not in {t.track_id for t in folk}
    greek = similar_tracks(store, 5, by="audio_dsp", culture="greek", n=3)
    assert {t.track_id for t in greek} <= set(range(11, 21)) and len(greek) == 3
    assert all(t.track_id % 3 == 0 for t in similar_tracks(store, 3, by="music", n=20))


def test_a_track_without_the_vector_is_named(store: VectorStore) -> None:
    with pytest.raises(NotFoundError):
        similar_tracks(store, 1, by="music")


def test_which_tracks_hold_a_vector(store: VectorStore) -> None:
    assert holding_vector(store, [3, 4, 6, 99], "music") == [3, 6]
    first = tracks_holding(store, "music", limit=4)
    assert [t.track_id for t in first] == [3, 6, 9, 12] and first[0].title == "track 3"


def test_similar_playlists_by_their_vectors(store: VectorStore) -> None:
    alike = similar_playlists(store, 2, by="sif", n=5)
    assert len(alike) == 5 and all(p.playlist_id % 2 == 0 and p.playlist_id != 2 for p in alike)
    assert [p.score for p in alike] == sorted((p.score for p in alike), reverse=True)
    with pytest.raises(ValueError):
        similar_playlists(store, 2, by="nonsense")


def test_the_map_separates_the_clusters_and_samples_with_a_bound(store: VectorStore) -> None:
    drawn = vector_map(store, TRACKS, "audio_dsp")
    assert drawn.total == 30 and drawn.ids == list(range(1, 31)) and drawn.xy.shape == (30, 2)
    centres = [drawn.xy[c * 10 : (c + 1) * 10].mean(axis=0) for c in range(3)]
    spread = max(
        float(np.linalg.norm(drawn.xy[c * 10 : (c + 1) * 10] - centres[c], axis=1).max()) for c in range(3)
    )
    gap = min(float(np.linalg.norm(centres[a] - centres[b])) for a in range(3) for b in range(a + 1, 3))
    assert gap > 5 * spread, "clusters must stay apart on the first two components"
    assert sum(drawn.explained) > 0.9
    sampled = vector_map(store, TRACKS, "audio_dsp", sample=7, seed=1)
    assert sampled.total == 30 and len(sampled.ids) == 7 and set(sampled.ids) <= set(range(1, 31))
    assert vector_map(store, TRACKS, "audio_dsp", sample=7, seed=1).ids == sampled.ids
    with pytest.raises(NotFoundError):
        vector_map(store, TRACKS, "audio")
