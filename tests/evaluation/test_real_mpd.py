"""Continuation on the real trimmed MPD sample: the split, the leak guard and the ranking of methods."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.evaluate.continuation import evaluate_continuation
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.catalog.queries import playlists_frame
from recsys.collaborative.factorization import MFConfig
from recsys.evaluation.continuation import MethodsConfig
from recsys.recommend.candidates import title_key

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def trimmed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('mpd') / 'catalog.db'}")
    db.upgrade(engine)
    assert ingest_mpd(engine, [shared_data / "mpd_trimmed"]).ok
    return engine


def test_title_keys_match_the_catalog_on_real_names(trimmed: sa.Engine) -> None:
    frame = playlists_frame(trimmed)
    mismatched = [(n, k) for n, k in frame.select("name", "name_key").iter_rows() if title_key(n) != k]
    assert frame.height == 3_555 and mismatched == []


def test_als_and_knn_beat_popularity_on_held_out_playlists(trimmed: sa.Engine) -> None:
    config = MethodsConfig(als=MFConfig(kind="als", factors=64, iterations=8, alpha=10.0))
    report = evaluate_continuation(
        trimmed, methods="popularity,knn,als,hybrid", test_playlists=100, seed=1, config=config
    )
    assert report["test_playlists"] == 100
    assert report["settings"]["train_shape"][0] == 3_555 - 100
    overall = {m: r["overall"] for m, r in report["results"].items()}
    for method in ("knn", "als", "hybrid"):
        assert overall[method]["r_precision"] > 2 * overall["popularity"]["r_precision"], overall
        assert overall[method]["ndcg"] > overall["popularity"]["ndcg"], overall
        assert overall[method]["clicks"] < overall["popularity"]["clicks"], overall
    # the title source gives the hybrid something where the others have no seeds at all
    title_only = report["results"]["hybrid"]["by_category"]["title_only"]
    assert (
        title_only["r_precision"] > 0 and report["results"]["als"]["by_category"]["title_only"]["ndcg"] == 0
    )
