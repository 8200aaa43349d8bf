"""Listening histories: real HetRec Last.fm 2k and Last.fm 1K samples, and generic CSV listens."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from pipelines.ingest.listens import ingest_listens
from recsys.catalog import keys as k
from recsys.catalog.queries import catalog_stats


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def read_tsv(path: Path, **kwargs: object) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.shared_data
def test_lastfm_2k_counts_and_rerun(sqlite_engine: sa.Engine, shared_data: Path) -> None:
    # SQLite only, for the time budget: the same SQL runs on PostgreSQL in test_csv_listens.
    catalog_engine = sqlite_engine
    folder = shared_data / "lastfm_hetrec2011_2k"
    pairs = read_tsv(folder / "user_artists.dat")
    names = read_tsv(folder / "artists.dat")
    # Independent counts: rows, users, artist ids; artists are matched by normalised name.
    assert (pairs.height, pairs["userID"].n_unique(), pairs["artistID"].n_unique()) == (92_834, 1_892, 17_632)
    keys = names.select(k.name_key(k.clean_text(pl.col("name"))).alias("key"), pl.col("name"))
    keys = keys.select(
        pl.when(pl.col("key") != "").then(pl.col("key")).otherwise(pl.col("name").str.to_lowercase())
    )
    distinct_artists = keys.to_series().n_unique()
    total_weight = pairs["weight"].cast(pl.Int64).sum()

    report = ingest_listens(catalog_engine, [folder], fmt="lastfm-2k", batch_rows=50_000)
    assert report.ok and report.rejected == 0, report.summary()
    assert report.loaded["listens"] == 92_834
    assert rows(
        catalog_engine,
        """SELECT count(*), count(DISTINCT user_key), count(DISTINCT artist_id), sum(weight),
                  count(track_id), count(listened_at) FROM listen WHERE source = 'lastfm-2k'""",
    ) == [(92_834, 1_892, distinct_artists, float(total_weight), 0, 0)]
    assert rows(catalog_engine, "SELECT count(*) FROM artist") == [(distinct_artists,)]
    # User 2's top artist is a known answer of the file: 13,883 plays of artistID 51 (Duran Duran).
    assert rows(
        catalog_engine,
        """SELECT a.name, l.weight FROM listen l JOIN artist a ON a.id = l.artist_id
           WHERE l.user_key = 'lastfm2k:2' ORDER BY l.weight DESC LIMIT 1""",
    ) == [("Duran Duran", 13_883.0)]

    with catalog_engine.connect() as conn:
        before = catalog_stats(conn)
    again = ingest_listens(catalog_engine, [folder / "user_artists.dat"], fmt="lastfm-2k")
    assert again.skipped == 1
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == before


@pytest.mark.shared_data
def test_lastfm_1k_sample(sqlite_engine: sa.Engine, shared_data: Path) -> None:
    path = next((shared_data / "lastfm_1k_sample").glob("*.tsv"))
    log = read_tsv(path, has_header=False, new_columns=["u", "ts", "amb", "a", "tmb", "t"])
    track_keys = log.select(
        pl.coalesce(
            pl.lit("mbid:") + pl.col("tmb").str.to_lowercase(),
            pl.lit("name:")
            + k.name_key(k.primary_artist(k.clean_text(pl.col("a"))))
            + pl.lit("|")
            + k.name_key(k.clean_text(pl.col("t"))),
        )
    ).to_series()
    report = ingest_listens(sqlite_engine, [path], fmt="lastfm-1k", batch_rows=1_500)
    assert report.ok and report.rejected == 0, report.summary()
    assert rows(
        sqlite_engine,
        "SELECT count(*), count(DISTINCT user_key), count(DISTINCT track_id), min(listened_at) FROM listen",
    )[0][:3] == (5_000, log["u"].n_unique(), track_keys.n_unique())
    assert rows(sqlite_engine, "SELECT count(*) FROM track") == [(track_keys.n_unique(),)]
    assert rows(sqlite_engine, "SELECT count(*) FROM track WHERE mbid IS NOT NULL") == [
        (log.filter(pl.col("tmb").is_not_null())["tmb"].n_unique(),)
    ]
    first = log.row(0)
    stored = rows(
        sqlite_engine,
        f"""SELECT t.title, t.artist_name FROM listen l JOIN track t ON t.id = l.track_id
            WHERE l.user_key = 'lastfm1k:{first[0]}' AND l.listened_at LIKE '2009-05-04 23:08:57%'""",
    )
    assert stored == [(first[5], first[3])]


def test_lastfm_2k_crlf_and_bad_rows(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "artists.dat").write_bytes(
        b"id\tname\turl\tpictureURL\r\n1\tMALICE MIZER\tu\tp\r\n2\t!!!\tu\tp\r\n"
    )
    (tmp_path / "user_artists.dat").write_bytes(
        b"userID\tartistID\tweight\r\n2\t1\t100\r\n2\t2\t5\r\n3\t1\tmany\r\n3\t9\t4\r\nx\t1\t1\r\n"
    )
    report = ingest_listens(sqlite_engine, [tmp_path], fmt="lastfm-2k")
    assert report.ok
    assert report.loaded["listens"] == 2
    assert sorted(report.reasons) == ["invalid userID", "invalid weight", "unknown artistID"]
    assert rows(
        sqlite_engine, "SELECT a.name, l.weight FROM listen l JOIN artist a ON a.id = l.artist_id ORDER BY 2"
    ) == [
        ("!!!", 5.0),
        ("MALICE MIZER", 100.0),
    ]


def test_lastfm_2k_without_artists_file_is_unreadable(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t1\t100\n")
    report = ingest_listens(sqlite_engine, [tmp_path], fmt="lastfm-2k")
    assert not report.ok and "artists.dat: no such file" in report.unreadable[0]
    assert rows(sqlite_engine, "SELECT count(*) FROM ingest_reject") == [(1,)]


CSV_LISTENS = """\
user_id,artist,title,track_id,timestamp,plays
u1,Radiohead,Creep,,2020-01-01T10:00:00Z,
u1,Radiohead,Creep,,2020-01-01T10:00:00Z,
u1,Radiohead,Creep,,1577873400,2
u2,,,spotify:track:0000000000000000000001,,3
u2,,,spotify:track:0000000000000000000009,,1
u3,Portishead,Roads,,yesterday,
u3,Portishead,Roads,,,0
,Portishead,Roads,,,
u4,,Untitled,,,
"""


def test_csv_listens(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    with catalog_engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO track (source_key, spotify_uri, title, title_key, artist_name, recording_key)
                   VALUES ('spotify:track:0000000000000000000001', 'spotify:track:0000000000000000000001',
                           'Known', 'known', 'Someone', 'someone|known')"""
            )
        )
    path = tmp_path / "listens.csv"
    path.write_text(CSV_LISTENS)
    report = ingest_listens(catalog_engine, [path], fmt="csv", id_prefix="app")
    assert report.ok
    assert report.loaded["listens"] == 3
    assert dict(report.reasons) == {
        "duplicate listen: same user, item and time as an earlier row": 1,
        "unknown track": 1,
        "invalid timestamp": 1,
        "invalid weight": 1,
        "missing field": 2,
    }
    got = rows(
        catalog_engine,
        """SELECT l.user_key, t.title, l.weight, l.source FROM listen l JOIN track t ON t.id = l.track_id
           ORDER BY l.user_key, l.weight""",
    )
    assert got == [
        ("app:u1", "Creep", 1.0, "csv"),
        ("app:u1", "Creep", 2.0, "csv"),
        ("app:u2", "Known", 3.0, "csv"),
    ]
    assert ingest_listens(catalog_engine, [path], fmt="csv", id_prefix="app").skipped == 1


def test_artist_only_listens_table(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "artists.csv"
    path.write_text("user,artist,count\na,Björk,10\nb,björk,4\nc,,1\n")
    report = ingest_listens(sqlite_engine, [path], fmt="csv")
    assert report.loaded["listens"] == 2 and dict(report.reasons) == {"missing field": 1}
    assert rows(
        sqlite_engine, "SELECT count(DISTINCT artist_id), sum(weight), count(track_id) FROM listen"
    ) == [(1, 14.0, 0)]


def test_lastfm_1k_bad_rows(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    mbid = "db16d0b3-b8ce-4aa8-a11a-e4d53cc7f8a6"
    lines = [
        f"user_000001\t2009-05-04T23:08:57Z\t\tDeep Dish\t{mbid.upper()}\tFlashdance",
        "user_000001\t2009-05-04T23:09:57Z\t\tDeep Dish\t\tFlashdance",
        f"user_000001\t2009-05-04T23:08:57Z\t\tDeep Dish\t{mbid}\tFlashdance",
        "user_000001\tlast tuesday\t\tDeep Dish\t\tFlashdance",
        "user_000002\t2009-05-05T10:00:00Z\t\tDeep Dish\t\t",
        "\t2009-05-05T10:00:00Z\t\tDeep Dish\t\tFlashdance",
    ]
    path = tmp_path / "log.tsv"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_listens(sqlite_engine, [path], fmt="lastfm-1k")
    assert report.loaded["listens"] == 2
    assert dict(report.reasons) == {
        "duplicate listen: same user, item and time as an earlier row": 1,
        "invalid timestamp": 1,
        "missing field": 2,
    }
    # The same event under an upper-case MBID is one track; without an MBID the names key it.
    assert sorted(r[0] for r in rows(sqlite_engine, "SELECT source_key FROM track")) == [
        f"mbid:{mbid}",
        "name:deep dish|flashdance",
    ]


def test_cli_listens_and_audio_dir_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = tmp_path / "l.csv"
    path.write_text("user,artist\na,Björk\n")
    result = runner.invoke(app, ["ingest", "listens", str(path), "--format", "csv", "--json"])
    assert result.exit_code == 0, result.output
    assert '"listens": 1' in result.output
    result = runner.invoke(app, ["ingest", "listens", str(tmp_path), "--format", "lastfm-2k"])
    assert result.exit_code == 1 and "user_artists.dat: no such file" in result.output
    result = runner.invoke(app, ["ingest", "audio-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such file or directory" in result.output
