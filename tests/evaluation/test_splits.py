"""Challenge-style splits: ten categories, reproducible, seeds and hold-outs disjoint, short playlists adapted."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.errors import InputError
from recsys.evaluation.splits import CATEGORIES, CATEGORY_NAMES, challenge_split


def synthetic(n: int = 400, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(n):
        length = int(rng.integers(5, 240))
        tracks = rng.integers(0, 5000, size=length)
        rows += [(pid, pos, int(t)) for pos, t in enumerate(tracks)]
    entries = pl.DataFrame(
        rows, schema={"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64}, orient="row"
    )
    playlists = pl.DataFrame({"playlist_id": list(range(n)), "name": [f"list {i}" for i in range(n)]})
    return entries, playlists


def test_split_is_seeded_balanced_and_disjoint() -> None:
    entries, playlists = synthetic()
    cases = challenge_split(entries, playlists, n_test=100, seed=5)
    assert cases == challenge_split(entries, playlists, n_test=100, seed=5)
    assert cases != challenge_split(entries, playlists, n_test=100, seed=6)
    assert len({c.playlist_id for c in cases}) == 100
    assert [sum(c.category == name for c in cases) for name in CATEGORY_NAMES] == [10] * 10
    lists = dict(entries.group_by("playlist_id", maintain_order=True).agg("track_id").iter_rows())
    by_name = {c.name: c for c in CATEGORIES}
    for case in cases:
        tracks = lists[case.playlist_id]
        category = by_name[case.category]
        assert (case.title is not None) == category.title
        assert not set(case.seeds) & set(case.holdout)
        assert set(case.seeds) | set(case.holdout) == set(tracks)
        assert len(case.holdout) == len(set(case.holdout)) >= 1
        if not case.adapted:
            assert len(case.seeds) == category.seeds
            if not category.random:
                assert list(case.seeds) == tracks[: category.seeds]
        else:
            assert 1 <= len(case.seeds) < category.seeds


def test_short_playlists_are_adapted_not_dropped() -> None:
    entries, playlists = synthetic(60)
    entries = entries.filter(pl.col("position") < 30)  # nothing long enough for 100 seeds
    cases = challenge_split(entries, playlists, n_test=20, seed=0)
    hundred = [c for c in cases if c.category in ("title_first_100", "title_random_100")]
    assert hundred and all(c.adapted and c.holdout for c in hundred)


def test_too_many_test_playlists_is_a_named_error() -> None:
    entries, playlists = synthetic(20)
    with pytest.raises(InputError, match="only 20"):
        challenge_split(entries, playlists, n_test=50)
