"""Known answers: on a planted block structure ALS, BPR and item-kNN recover withheld items."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.collaborative.base import top_n
from recsys.collaborative.baselines import ItemKNN, PlaylistKNN, Popularity
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import playlist_matrix
from tests.collaborative.planted import BLOCK_ITEMS, BLOCKS, block_of, planted_frame


def heldout_case(frame: pl.DataFrame, playlist_id: int) -> tuple[list[int], list[int]]:
    """The playlist's first 8 tracks as seeds; its other 7 tracks withheld."""
    tracks = frame.filter(pl.col("playlist_id") == playlist_id).sort("position")["track_id"].to_list()
    return tracks[:8], tracks[8:]


@pytest.mark.parametrize(
    "scorer",
    [
        lambda: MatrixFactorization(MFConfig(kind="als", factors=8, iterations=15, alpha=10.0, seed=1)),
        lambda: ItemKNN(),
        lambda: MatrixFactorization(
            MFConfig(kind="bpr", factors=16, iterations=200, learning_rate=0.05, regularization=0.01, seed=1)
        ),
        lambda: MatrixFactorization(
            MFConfig(kind="als", factors=8, iterations=15, alpha=10.0, seed=1, weighting="bm25")
        ),
        lambda: PlaylistKNN(neighbours=20),
    ],
    ids=["als", "knn", "bpr", "als-bm25", "playlist-knn"],
)
def test_recovers_withheld_items_of_the_block(scorer) -> None:  # type: ignore[no-untyped-def]
    frame = planted_frame()
    test_ids = [0, 61, 122, 183]  # one playlist per block, never seen in training
    train = playlist_matrix(frame, exclude=test_ids)
    assert not set(test_ids) & set(train.row_keys.tolist())
    model = scorer()
    model.fit(train)
    for pid in test_ids:
        seeds, withheld = heldout_case(frame, pid)
        seed_idx = train.items.indices(seeds)
        rest = BLOCK_ITEMS - len(seeds)  # the block's other items: what a perfect model ranks first
        best = top_n(model.scores(seed_idx), rest + 8, exclude=seed_idx)
        ranked = train.items.ids[best].tolist()
        block = block_of(seeds[0])
        in_block = sum(block_of(t) == block for t in ranked[:rest]) / rest
        recovered = len(set(withheld) & set(ranked)) / len(withheld)
        assert in_block >= 0.9, (pid, in_block)
        assert recovered >= 0.85, (pid, recovered)
        assert not set(ranked) & set(seeds)


def test_popularity_ignores_seeds_and_counts_rows() -> None:
    frame = pl.DataFrame(
        {
            "playlist_id": [1, 1, 1, 2, 2, 3],
            "position": [0, 1, 2, 0, 1, 0],
            "track_id": [10, 11, 10, 10, 12, 12],
        }
    )
    m = playlist_matrix(frame)
    pop = Popularity()
    pop.fit(m)
    # track 10 is listed twice in playlist 1: a playlist holds a track once
    assert dict(zip(m.items.ids.tolist(), pop.scores(np.array([0])).tolist(), strict=True)) == {
        10: 2,
        11: 1,
        12: 2,
    }


def test_knn_scores_are_cosine_cooccurrence() -> None:
    frame = pl.DataFrame(
        {"playlist_id": [1, 1, 2, 2, 3], "position": [0, 1, 0, 1, 0], "track_id": [10, 11, 10, 12, 12]}
    )
    m = playlist_matrix(frame)
    knn = ItemKNN()
    knn.fit(m)
    s = knn.scores(m.items.indices([10]))
    # 10 is in 2 rows, 11 in 1, 12 in 2: sim(10,11) = 1/sqrt(2), sim(10,12) = 1/2
    assert s[m.items.index(11)] == pytest.approx(1 / np.sqrt(2), rel=1e-5)
    assert s[m.items.index(12)] == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("kind", ["als", "knn", "als-bm25", "playlist-knn"])
def test_explanations_add_up_to_the_scores(kind: str) -> None:
    train = playlist_matrix(planted_frame(), exclude=[0])
    models = {
        "als": lambda: MatrixFactorization(MFConfig(kind="als", factors=16, iterations=5, alpha=5.0)),
        "knn": ItemKNN,
        "als-bm25": lambda: MatrixFactorization(
            MFConfig(kind="als", factors=16, iterations=5, alpha=5.0, weighting="bm25")
        ),
        "playlist-knn": lambda: PlaylistKNN(neighbours=30),
    }
    model = models[kind]()
    model.fit(train)
    seeds = train.items.indices([1000, 1001, 1002, 1003])
    # BM25 weights its own seeds when given none
    weights = None if kind == "als-bm25" else np.array([1.0, 2.0, 1.0, 3.0], dtype=np.float32)
    scores = model.scores(seeds, weights)
    targets = top_n(scores, 10, exclude=seeds)
    contributions = model.explain(seeds, targets, weights)
    assert contributions.shape == (10, 4)
    np.testing.assert_allclose(contributions.sum(axis=1), scores[targets], rtol=2e-3, atol=1e-5)


def test_block_count_is_what_the_fixture_plants() -> None:
    train = playlist_matrix(planted_frame())
    assert train.shape == (BLOCKS * 60, BLOCKS * BLOCK_ITEMS)


def test_top_n_breaks_ties_by_index_and_respects_exclusions() -> None:
    scores = np.array([1, 3, 3, 2, 3, 0], dtype=np.float32)
    assert top_n(scores, 2).tolist() == [1, 2]
    assert top_n(scores, 4).tolist() == [1, 2, 4, 3]
    assert top_n(scores, 3, exclude=np.array([1])).tolist() == [2, 4, 3]
    assert top_n(np.array([-np.inf, 1.0]), 5).tolist() == [1]


def reference_top_n(scores: np.ndarray, n: int, exclude: np.ndarray) -> list[int]:
    """Sort every finite, non-excluded score: best first, ties to the lower index."""
    banned = set(exclude.tolist())
    kept = [(-float(s), i) for i, s in enumerate(scores) if np.isfinite(s) and i not in banned]
    return [i for _, i in sorted(kept)[:n]]


@pytest.mark.parametrize("case", range(12))
def test_top_n_matches_a_full_sort_on_large_arrays(case: int) -> None:
    rng = np.random.default_rng(case)
    size = int(rng.integers(20_000, 60_000))
    shape = case % 4
    if shape == 0:  # dense real scores
        scores = rng.normal(size=size).astype(np.float32)
    elif shape == 1:  # few levels: ties everywhere
        scores = rng.integers(0, 5, size=size).astype(np.float32)
    elif shape == 2:  # ascending: the strided sample misjudges nothing, the top sits at the end
        scores = np.sort(rng.normal(size=size)).astype(np.float32)
    else:  # mostly masked, with NaN and infinities sprinkled in
        scores = np.full(size, -np.inf, dtype=np.float32)
        live = rng.choice(size, size // 50, replace=False)
        scores[live] = rng.normal(size=len(live))
        scores[rng.choice(size, 30, replace=False)] = np.nan
        scores[rng.choice(size, 5, replace=False)] = np.inf
    exclude = rng.choice(size, 40, replace=False)
    for n in (1, 10, 500, 2_000):
        assert top_n(scores, n, exclude=exclude).tolist() == reference_top_n(scores, n, exclude)
