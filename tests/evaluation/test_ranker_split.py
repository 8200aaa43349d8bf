"""The ranker's validation playlists are training playlists, never test ones, and a ranker
evaluation run twice with one seed gives the same report."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.evaluate.continuation import evaluate_continuation
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.collaborative.factorization import MFConfig
from recsys.evaluation.continuation import MethodsConfig
from recsys.evaluation.splits import challenge_split, validation_folds, validation_split
from recsys.recommend.ranker import RankerConfig
from tests.evaluation.test_splits import synthetic


def test_validation_playlists_are_never_test_playlists() -> None:
    entries, playlists = synthetic()
    cases = challenge_split(entries, playlists, n_test=100, seed=5)
    test_ids = {c.playlist_id for c in cases}
    validation = validation_split(entries, playlists, n=150, exclude=test_ids, seed=5)
    val_ids = {c.playlist_id for c in validation}
    assert len(val_ids) == 150 and not val_ids & test_ids
    assert validation == validation_split(entries, playlists, n=150, exclude=test_ids, seed=5)
    # asking for more than there are takes every non-test playlist, still none of the tests
    everything = validation_split(entries, playlists, n=10_000, exclude=test_ids, seed=5)
    assert {c.playlist_id for c in everything} == set(entries["playlist_id"].unique()) - test_ids


def stable(report: dict[str, Any]) -> dict[str, Any]:
    """The report less what depends on the clock."""
    out = {k: v for k, v in report.items() if k not in ("fit_seconds",)}
    out["settings"] = {k: v for k, v in report["settings"].items() if k != "seconds"}
    out["results"] = {
        m: {k: v for k, v in r.items() if k != "latency_ms"} for m, r in report["results"].items()
    }
    return out


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("ranker-eval")
    paths = generate_mpd(root / "mpd", DemoConfig(playlists=300, per_slice=100, seed=5, max_tracks=30))
    engine = db.make_engine(f"sqlite:///{root / 'catalog.db'}")
    db.upgrade(engine)
    assert ingest_mpd(engine, paths).ok
    yield engine
    engine.dispose()


def test_a_ranker_evaluation_is_reproducible_and_trains_on_no_test_playlist(demo_engine) -> None:  # type: ignore[no-untyped-def]
    config = MethodsConfig(
        als=MFConfig(kind="als", factors=8, iterations=4, alpha=10.0, device="cpu"), validation=80, folds=1
    )
    ranker = RankerConfig(pool=200, trees=20, num_leaves=7, min_data_in_leaf=20, threads=1)
    args = {
        "methods": "als,fusion,ranker",
        "test_playlists": 40,
        "seed": 3,
        "config": config,
        "ranker_config": ranker,
    }
    first = evaluate_continuation(demo_engine, **args)
    second = evaluate_continuation(demo_engine, **args)
    assert stable(first) == stable(second)
    assert first["ranker"]["validation_playlists"] == 80
    # 300 playlists: 40 tests, 80 validation, the sources of the ranker's training fitted on the other 180
    assert first["ranker"]["validation_train_shape"][0] == 180
    assert first["methods"] == ["als", "fusion", "ranker"]
    assert first["results"]["ranker"]["overall"]["r_precision"] > 0


def test_validation_folds_are_disjoint_and_leave_the_sources_half() -> None:
    entries, playlists = synthetic()  # 400 playlists
    cases = challenge_split(entries, playlists, n_test=100, seed=5)
    test_ids = {c.playlist_id for c in cases}
    folds = validation_folds(entries, playlists, n=1000, folds=3, exclude=test_ids, seed=2)
    sizes = [len(f) for f in folds]
    assert sizes[0] == 150  # half of the 300 non-test playlists at most
    ids = [c.playlist_id for f in folds for c in f]
    assert len(ids) == len(set(ids)) == 300 and not set(ids) & test_ids  # the third fold finds none left
    assert len(folds) == 2


def test_views_show_validation_playlists_in_other_categories_never_test_ones() -> None:
    entries, playlists = synthetic()  # 400 playlists
    cases = challenge_split(entries, playlists, n_test=100, seed=5)
    test_ids = {c.playlist_id for c in cases}
    plain = validation_folds(entries, playlists, n=60, folds=2, exclude=test_ids, seed=2)
    folds = validation_folds(entries, playlists, n=60, folds=2, exclude=test_ids, seed=2, views=3)
    assert folds == validation_folds(entries, playlists, n=60, folds=2, exclude=test_ids, seed=2, views=3)
    lists = dict(
        entries.sort("playlist_id", "position")
        .group_by("playlist_id", maintain_order=True)
        .agg(pl.col("track_id"))
        .iter_rows()
    )
    fold_ids = []
    for one, shown in zip(plain, folds, strict=True):
        ids = {c.playlist_id for c in one}
        assert shown[: len(one)] == one  # the assigned views first, unchanged
        assert {c.playlist_id for c in shown} == ids and not ids & test_ids  # the same playlists
        assert len(one) < len(shown) <= 3 * len(one)
        per_playlist: dict[int, list[str]] = {}
        for case in shown:
            per_playlist.setdefault(case.playlist_id, []).append(case.category)
            assert not set(case.seeds) & set(case.holdout)
            assert set(case.seeds) | set(case.holdout) == set(lists[case.playlist_id])
        assert not any(c.adapted for c in shown[len(one) :])  # only where the playlist is long enough
        assert all(len(c) == len(set(c)) and len(c) <= 3 for c in per_playlist.values())
        fold_ids.append(ids)
    assert not fold_ids[0] & fold_ids[1]


def test_views_add_queries_from_the_same_validation_playlists(demo_engine) -> None:  # type: ignore[no-untyped-def]
    config = MethodsConfig(
        als=MFConfig(kind="als", factors=8, iterations=4, alpha=10.0, device="cpu"),
        validation=80,
        folds=1,
        views=2,
    )
    ranker = RankerConfig(pool=200, trees=20, num_leaves=7, min_data_in_leaf=20, threads=1)
    report = evaluate_continuation(
        demo_engine, methods="ranker", test_playlists=40, seed=3, config=config, ranker_config=ranker
    )
    info = report["ranker"]
    assert info["validation_playlists"] == 80 and info["views"] == 2
    assert 80 < info["validation_queries"] <= 160
    assert info["validation_train_shape"][0] == 180  # the views add no playlist to take out
