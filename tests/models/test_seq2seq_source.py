from __future__ import annotations

import numpy as np

from recsys.models.playlist_baselines import MeanVectorEncoder
from recsys.recommend.candidates import CandidateSource
from recsys.recommend.seq2seq_source import PlaylistNeighbourSource


def _scenes() -> tuple[list[list[int]], MeanVectorEncoder]:
    """Planted neighbourhoods: tracks 0–9 point one way, 10–19 another; playlists stay in one scene."""
    rng = np.random.default_rng(0)
    playlists = [rng.choice(np.arange(10) + 10 * (i % 2), size=5, replace=False).tolist() for i in range(40)]
    vectors = np.zeros((20, 2))
    vectors[:10, 0] = 1.0
    vectors[10:, 1] = 1.0
    return playlists, MeanVectorEncoder("planted", np.arange(20), vectors)


def test_neighbours_propose_tracks_of_the_seeds_scene_and_never_the_seeds() -> None:
    playlists, encoder = _scenes()
    source = PlaylistNeighbourSource(encoder, playlists, neighbours=10, name="seq2seq")
    assert isinstance(source, CandidateSource)
    found = source.candidates([3, 7], None, 5)
    ids = [c.track_id for c in found]
    assert len(ids) == 5 and all(t < 10 for t in ids)
    assert 3 not in ids and 7 not in ids
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert all(t >= 10 for t in (c.track_id for c in source.candidates([12], "title ignored", 5)))


def test_no_seed_no_candidates_and_unknown_seeds_are_harmless() -> None:
    playlists, encoder = _scenes()
    source = PlaylistNeighbourSource(encoder, playlists, neighbours=5)
    assert len(source.candidates([], "chill", 10)) == 0
    assert all(c.track_id < 10 for c in source.candidates([999, 2], None, 3))
