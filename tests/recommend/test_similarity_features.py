"""Known answers for the ranker's ``similarity`` features: a candidate listed with the first
seed only, one listed with the last seed only, one never listed with a seed."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.collaborative.matrix import from_frame
from recsys.recommend.artist_sources import ArtistIndex
from recsys.recommend.ranker_features import FEATURES, LAST_SEEDS, PairFeatures

SEEDS = [10, 11, 12, 13, 14, 15]  # in playlist order: 10 is not among the last five
FIRST, LAST, NEVER = 20, 21, 22


class Factors:
    """A stand-in factorisation: 2-d factors, a playlist's vector the mean of its seeds'."""

    def __init__(self, ids: list[int]) -> None:
        direction = {10: (1.0, 0.0), FIRST: (1.0, 0.0), LAST: (0.0, 1.0), NEVER: (-1.0, -1.0)}
        self.item_factors = np.array([direction.get(t, (0.0, 1.0)) for t in ids], dtype=np.float32)

    def user_vector(self, seeds: np.ndarray) -> np.ndarray:
        return self.item_factors[seeds].mean(axis=0)


@pytest.fixture(scope="module")
def rows() -> dict[int, dict[str, float]]:
    lists = [[10, FIRST]] * 3 + [[15, LAST]] * 3 + [[11, 12, 13, 14], [NEVER]]
    entries = pl.DataFrame(
        [(p, t) for p, tracks in enumerate(lists) for t in tracks],
        schema={"playlist_id": pl.Int64, "track_id": pl.Int64},
        orient="row",
    )
    matrix = from_frame(entries, row="playlist_id", item="track_id")
    index = ArtistIndex(matrix, {t: t for t in matrix.items.ids.tolist()})
    features = PairFeatures(matrix, index, {}, Factors(matrix.items.ids.tolist()), matrix.items)
    pool = np.array([FIRST, LAST, NEVER], dtype=np.int64)
    out = features.build({}, pool, np.zeros(3), SEEDS, None)
    return {int(t): dict(zip(FEATURES, row.tolist(), strict=True)) for t, row in zip(pool, out, strict=True)}


def test_item_knn_similarity_to_the_seeds(rows: dict[int, dict[str, float]]) -> None:
    assert LAST_SEEDS == 5
    # listed 3 times with one seed listed 3 times: 3 / √(3·3)
    assert rows[FIRST]["knn_max"] == pytest.approx(1.0)
    assert rows[LAST]["knn_max"] == pytest.approx(1.0)
    assert rows[FIRST]["knn_mean"] == pytest.approx(1 / 6)
    assert rows[NEVER]["knn_max"] == 0.0 and rows[NEVER]["knn_mean"] == 0.0
    # only the last five seeds count for knn_last: the first seed's companion gets nothing
    assert rows[FIRST]["knn_last"] == 0.0
    assert rows[LAST]["knn_last"] == pytest.approx(1 / 5)


def test_neighbour_share_and_popularity_against_the_seeds(rows: dict[int, dict[str, float]]) -> None:
    # seven playlists share a seed (all but the last); three of them hold FIRST, three LAST
    assert rows[FIRST]["neighbour_share"] == pytest.approx(3 / 7)
    assert rows[LAST]["neighbour_share"] == pytest.approx(3 / 7)
    assert rows[NEVER]["neighbour_share"] == 0.0
    seeds_mean = np.log1p([3, 1, 1, 1, 1, 3]).mean()
    assert rows[FIRST]["pop_vs_seeds"] == pytest.approx(np.log1p(3) - seeds_mean, rel=1e-5)
    assert rows[NEVER]["pop_vs_seeds"] == pytest.approx(np.log1p(1) - seeds_mean, rel=1e-5)


def test_factor_features_favour_what_the_playlist_ended_with(rows: dict[int, dict[str, float]]) -> None:
    # the last five seeds point along (0, 1), as LAST does; FIRST is orthogonal to them
    assert rows[LAST]["mf_cosine_last"] == pytest.approx(1.0)
    assert rows[FIRST]["mf_cosine_last"] == pytest.approx(0.0, abs=1e-6)
    assert rows[NEVER]["mf_cosine_last"] < 0
    # fold-in scores: LAST 5/6, FIRST 1/6, NEVER below zero; ranks as shares of the pool
    assert [rows[t]["mf_rank"] for t in (LAST, FIRST, NEVER)] == pytest.approx([1 / 3, 2 / 3, 1.0])
