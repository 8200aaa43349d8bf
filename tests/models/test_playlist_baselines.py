from __future__ import annotations

import numpy as np

from recsys.models.base import PlaylistEncoder
from recsys.models.playlist_baselines import (
    MeanVectorEncoder,
    RandomEncoder,
    SifEncoder,
    fit_sif,
    item2vec_vectors,
    track_frequencies,
)


def _two_scenes(seed: int = 0) -> list[list[int]]:
    """Planted co-occurrence: tracks 0–9 only ever share playlists with each other, as do 10–19."""
    rng = np.random.default_rng(seed)
    return [rng.choice(np.arange(10) + 10 * (i % 2), size=8, replace=False).tolist() for i in range(200)]


def test_item2vec_vectors_recover_the_planted_scenes() -> None:
    track_ids, vectors = item2vec_vectors(_two_scenes(), dim=4, window=3)
    assert track_ids.tolist() == list(range(20))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = np.add.outer(np.arange(20) // 10, np.zeros(20)) == np.arange(20)[None, :] // 10
    off_diagonal = ~np.eye(20, dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.5


def test_sif_removes_the_common_component_and_ignores_order() -> None:
    playlists = _two_scenes()
    sif = fit_sif(playlists, dim=4, window=3)
    vectors = sif.embed(playlists)
    assert isinstance(sif, PlaylistEncoder)
    assert np.abs(vectors @ sif.component).max() < 1e-5
    np.testing.assert_allclose(sif.embed([playlists[0][::-1]])[0], vectors[0], atol=1e-6)
    assert np.all(sif.embed([[999_999]]) == 0)  # nothing known: the zero vector


def test_sif_weights_favour_rare_tracks() -> None:
    track_ids = np.asarray([1, 2])
    vectors = np.asarray([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    freq = track_frequencies([[1] * 99 + [2]], track_ids)
    assert freq.tolist() == [99, 1]
    sif = SifEncoder(track_ids, vectors, freq, [[1, 2], [1]], a=0.01)
    assert sif.weights[1] > 10 * sif.weights[0]


def test_mean_vector_encoder_averages_known_tracks() -> None:
    encoder = MeanVectorEncoder("mean", np.asarray([5, 6]), np.asarray([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(encoder.embed([[5, 6, 7], [6], []]), [[2.0, 3.0], [3.0, 4.0], [0.0, 0.0]])


def test_random_control_is_deterministic_per_content() -> None:
    encoder = RandomEncoder(dim=16, seed=1)
    a = encoder.embed([[1, 2, 3], [3, 2, 1], [1, 2, 3]])
    np.testing.assert_array_equal(a[0], a[2])
    assert not np.allclose(a[0], a[1])
    np.testing.assert_array_equal(RandomEncoder(dim=16, seed=1).embed([[1, 2, 3]])[0], a[0])
