from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from recsys.evaluation.probing import TASKS, build_tasks, linear_probe, probe_all, quantile_bins, title_words
from recsys.models.playlist_baselines import MeanVectorEncoder, RandomEncoder


class LengthAndOrderEncoder:
    """A hand-made encoder that knows the length (one-hot bins) and how ascending the playlist is."""

    name = "planted"

    @property
    def dim(self) -> int:
        return 40

    def embed(self, playlists: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(playlists), 40), dtype=np.float32)
        for i, p in enumerate(playlists):
            out[i, min(len(p) // 5, 19)] = 1.0
            if len(p) > 1:
                out[i, 20] = float(np.mean(np.diff(np.asarray(p)) > 0))
        return out


def _catalog(seed: int = 0) -> tuple[list[list[int]], list[str], dict[int, int]]:
    rng = np.random.default_rng(seed)
    # Planted flow: every playlist runs in ascending track order.
    playlists = [
        sorted(rng.choice(500, size=int(rng.integers(5, 100)), replace=False).tolist()) for _ in range(300)
    ]
    words = ["Summer vibes", "rock", "CHILL", "country roads", "my playlist", "2017"]
    names = [words[i % len(words)] for i in range(300)]
    return playlists, names, {t: t % 37 for t in range(500)}


def test_title_words_skip_generic_words_and_numbers() -> None:
    labels, vocabulary = title_words(
        ["Rock", "rock hits", "Chill rock", "chill", "my playlist", "2017", "Country"], top=3
    )
    assert vocabulary == ["rock", "chill", "country"]
    assert labels.tolist() == [0, 0, -1, 1, -1, -1, 2]  # "Chill rock" holds two top words


def test_quantile_bins_are_balanced() -> None:
    bins = quantile_bins(np.arange(1000, dtype=float), 10)
    assert np.bincount(bins).tolist() == [100] * 10


def test_tasks_are_well_formed() -> None:
    playlists, names, artists = _catalog()
    tasks = build_tasks(playlists, names, artists, seed=1)
    positives = tasks.content_label == 1
    for i, t, label in zip(tasks.content_playlist, tasks.content_track, tasks.content_label, strict=True):
        assert (int(t) in playlists[i]) == bool(label)
    assert positives.mean() == pytest.approx(0.5)
    for k, i in enumerate(tasks.order_index):
        assert sorted(tasks.swapped[k]) == sorted(playlists[i]) and tasks.swapped[k] != playlists[i]
        assert sorted(tasks.halves[k]) == sorted(playlists[i])
    assert set(tasks.length.tolist()) == set(range(10))
    assert tasks.title_vocabulary == ["chill", "country", "roads", "rock", "summer", "vibes"]
    assert (tasks.title >= 0).sum() == 100  # "rock" and "CHILL"; two-word names hold two top words


def test_probes_find_what_is_planted_and_the_controls_do_not() -> None:
    playlists, names, artists = _catalog()
    tasks = build_tasks(playlists, names, artists, seed=1)
    bag = MeanVectorEncoder("bag", np.arange(500), np.random.default_rng(0).standard_normal((500, 64)))
    table = probe_all([LengthAndOrderEncoder(), bag, RandomEncoder(dim=16)], tasks, folds=3)
    planted, bag_scores, random = table.rows["planted"], table.rows["bag"], table.rows["random"]
    assert set(planted) == set(TASKS)
    assert planted["length"].accuracy > 0.8
    assert planted["order-halves"].accuracy > 0.9  # swapping the halves breaks the ascending flow
    assert planted["order-swap"].accuracy > 0.9
    assert bag_scores["order-halves"].accuracy <= 0.55  # a bag cannot see order at all
    assert bag_scores["content"].accuracy > 0.6  # a bag of its own track vectors knows its content
    assert random["length"].accuracy < 0.25 and random["content"].accuracy < 0.62
    markdown = table.to_markdown()
    assert "| planted | 40 |" in markdown and "order-swap" in markdown
    assert table.as_dict()["encoders"]["bag"]["dim"] == 64


def test_a_probe_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(np.zeros((4, 2)), np.zeros(4, dtype=int))
