"""Listening-data evaluation: the catalog's listen table (both databases) and the HetRec reader."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from recsys.catalog.schema import Artist, Listen
from recsys.collaborative.factorization import MFConfig
from recsys.errors import InputError
from recsys.evaluation.listens import evaluate_listens, listens_from_catalog, read_hetrec_user_artists


def load_planted_listens(engine: sa.Engine, seed: int = 0) -> None:
    """Users of 4 taste groups, each playing 12 of its group's 25 artists (plus one global hit)."""
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Artist),
            [
                {"id": a, "source_key": f"test:{a}", "name": f"A{a}", "name_key": f"a{a}"}
                for a in range(1, 102)
            ],
        )
        rows = []
        for user in range(160):
            group = user % 4
            artists = 1 + group * 25 + rng.choice(25, 12, replace=False)
            for artist in [*artists.tolist(), 101]:
                rows.append(
                    {
                        "listen_key": hashlib.sha256(f"{user}:{artist}".encode()).hexdigest(),
                        "source": "test",
                        "user_key": f"u{user}",
                        "artist_id": int(artist),
                        "weight": float(rng.integers(1, 500)),
                    }
                )
        conn.execute(sa.insert(Listen), rows)


def test_planted_tastes_from_the_catalog(catalog_engine: sa.Engine) -> None:
    load_planted_listens(catalog_engine)
    data = listens_from_catalog(catalog_engine)
    assert data.frame.height == 160 * 13
    small = MFConfig(kind="als", factors=8, iterations=15, alpha=2.0, regularization=0.1)
    report = evaluate_listens(data, methods="popularity,knn,als", seed=1, als=small)
    results = report["results"]
    assert report["settings"]["users"] == 160
    for method in ("knn", "als"):
        # held-out artists are in the user's group: a model of the groups finds them
        assert results[method]["recall@50"] > 0.9, (method, results)
        assert results[method]["ndcg@10"] > 1.3 * results["popularity"]["ndcg@10"], (method, results)


def test_empty_catalog_is_a_named_error(sqlite_engine: sa.Engine) -> None:
    with pytest.raises(InputError, match="no listens"):
        listens_from_catalog(sqlite_engine)


def test_reader_reports_bad_lines_and_keeps_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "user_artists.dat"
    path.write_bytes(b"userID\tartistID\tweight\r\n2\t51\t13883\r\n2\tx\t5\r\n3\t51\t-1\r\n3\t52\t7\r\n")
    data = read_hetrec_user_artists(tmp_path)
    assert data.frame.rows() == [("2", 51, 13883.0), ("3", 52, 7.0)]
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in data.problems] == ["3", "4"]
    (tmp_path / "other.dat").write_text("a\tb\n")
    with pytest.raises(InputError, match="not a HetRec"):
        read_hetrec_user_artists(tmp_path / "other.dat")


@pytest.mark.shared_data
def test_hetrec_2k_reads_whole(shared_data: Path) -> None:
    data = read_hetrec_user_artists(shared_data / "lastfm_hetrec2011_2k")
    assert data.problems == []
    assert data.frame.height == 92_834
    assert data.frame["user_key"].n_unique() == 1_892
    assert data.frame["item_id"].n_unique() == 17_632


def test_training_on_listens_is_its_own_kind(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    from pipelines.train.als import train_factorization
    from recsys.collaborative.store import latest_model
    from recsys.errors import NotFoundError

    load_planted_listens(sqlite_engine)
    saved = train_factorization(
        sqlite_engine, tmp_path, MFConfig(kind="als", factors=8, iterations=3), source="listens"
    )
    assert saved.path.parent.name == "als-listens"
    assert saved.metrics["rows"] == 160 and saved.metrics["items"] == 101
    assert latest_model(sqlite_engine, "als-listens").version == saved.version
    with pytest.raises(NotFoundError):
        latest_model(sqlite_engine, "als")  # a listens model never serves playlist continuation
