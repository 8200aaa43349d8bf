"""Metrics against hand-computed answers."""

from __future__ import annotations

import math

import pytest

from recsys.evaluation.metrics import (
    CLICKS_NONE,
    clicks,
    ndcg,
    precision_at,
    r_precision,
    r_precision_artist,
    recall_at,
)

ARTIST = {1: 100, 2: 100, 3: 200, 4: 300, 5: 200, 6: 400, 7: 500}


def test_r_precision_counts_hits_in_the_first_truth_size() -> None:
    assert r_precision([1, 9, 2, 3], [1, 2, 3]) == pytest.approx(2 / 3)
    assert r_precision([9, 8, 7, 1], [1, 2, 3]) == 0.0
    assert r_precision([1], []) == 0.0


def test_artist_partial_credit() -> None:
    # truth 1, 3, 4: top-3 = [1, 5, 6]; 1 is a hit; 5 shares artist 200 with missed 3
    assert r_precision_artist([1, 5, 6], [1, 3, 4], ARTIST.get) == pytest.approx((1 + 0.25) / 3)
    # an artist is credited once however many tracks share it
    assert r_precision_artist([5, 5, 6], [3, 4, 7], ARTIST.get) == pytest.approx(0.25 / 3)


def test_ndcg() -> None:
    assert ndcg([1, 2], [1, 2]) == pytest.approx(1.0)
    assert ndcg([9, 1], [1]) == pytest.approx(1 / math.log2(3))
    idcg = 1 + 1 / math.log2(3)
    assert ndcg([9, 1, 2], [1, 2]) == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / idcg)
    assert ndcg([9, 9, 1], [1], k=2) == 0.0


def test_clicks() -> None:
    assert clicks([1], [1]) == 0
    assert clicks([*list(range(100, 110)), 1], [1]) == 1
    assert clicks([*list(range(100, 121)), 1], [1]) == 2
    assert clicks([9, 8], [1]) == CLICKS_NONE


def test_recall_and_precision() -> None:
    assert recall_at([1, 9, 2], [1, 2, 3, 4], 2) == 0.25
    assert precision_at([1, 9, 2], [1, 2, 3, 4], 2) == 0.5
