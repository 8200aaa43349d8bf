"""Table ingestion: the column mapping, per-row rejects, unreadable files, playlists across batches."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipelines.ingest import columns as c
from pipelines.ingest.tables import ingest_table
from recsys.catalog.queries import catalog_stats

TRACKS_CSV = """\
id,Track_Name,artist_name,album,isrc,duration,year,genres
spotify:track:4uLU6hMCjMI75M1A2tKUQC,Never Gonna Give You Up,Rick Astley,Whenever You Need Somebody,,213,1987,pop|dance
https://open.spotify.com/track/7GhIk7Il098yCjg4BQjzvb?si=x,Take On Me,a-ha,Hunting High and Low,,3:45,1985,synth-pop
x1,Halo,Beyoncé,,us-sm1-08-12345,261000,2008,
x2,Shape of You,Ed Sheeran feat. Nobody,,,,2017,
x3,,Nameless Artist,,,200,,
x4,Bad Duration,Someone,,,three minutes,,
x5,Bad Isrc,Someone,,NOTANISRC,,,
x6,Bad Year,Someone,,,,sometime,
x7,No Artist,,,,,,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_tracks_mapping_rejects_and_rerun(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "tracks.csv", TRACKS_CSV)
    report = ingest_table(catalog_engine, [path], kind="tracks", id_prefix="shop")
    assert report.ok
    assert report.loaded["tracks"] == 4
    assert report.rejected == 5
    assert report.reasons == {
        "missing field": 2,
        "invalid duration": 1,
        "invalid isrc": 1,
        "invalid year": 1,
    }
    got = {
        r[0]: r[1:]
        for r in rows(
            catalog_engine, "SELECT source_key, title, duration_ms, year, isrc, spotify_uri FROM track"
        )
    }
    assert got == {
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC": (
            "Never Gonna Give You Up",
            213_000,
            1987,
            None,
            "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        ),
        "spotify:track:7GhIk7Il098yCjg4BQjzvb": (
            "Take On Me",
            225_000,
            1985,
            None,
            "spotify:track:7GhIk7Il098yCjg4BQjzvb",
        ),
        "isrc:USSM10812345": ("Halo", 261_000, 2008, "USSM10812345", None),
        "shop:x2": ("Shape of You", None, 2017, None, None),
    }
    genres = rows(catalog_engine, "SELECT genres FROM track WHERE source_key LIKE 'spotify:track:4u%'")[0][0]
    assert (genres if isinstance(genres, list) else json.loads(genres)) == ["pop", "dance"]
    artists = {r[0] for r in rows(catalog_engine, "SELECT name FROM artist")}
    assert artists == {"Rick Astley", "a-ha", "Beyoncé", "Ed Sheeran", "Nobody"}
    reasons = dict(rows(catalog_engine, "SELECT location, reason FROM ingest_reject"))
    location = str(path.resolve())
    assert reasons[f"{location}: row 5"] == "missing field: title"
    assert reasons[f"{location}: row 6"] == "invalid duration: 'three minutes'"
    assert reasons[f"{location}: row 9"] == "missing field: artist"

    with catalog_engine.connect() as conn:
        before = catalog_stats(conn)
    again = ingest_table(catalog_engine, [path], kind="tracks", id_prefix="shop")
    assert again.skipped == 1 and again.rejected == 0
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == before


def test_missing_column_is_unreadable_and_good_file_beside_lands(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    bad = write(tmp_path / "bad.csv", "id,title,duration_ms\n1,Song,1000\n")
    good = write(tmp_path / "good.tsv", "title\tartist\nSong\tSinger\n")
    report = ingest_table(sqlite_engine, [bad, good], kind="tracks")
    assert not report.ok
    assert report.unreadable == [f"{bad.resolve()}: missing column: artist (artist, artist_name, artists)"]
    assert report.loaded["tracks"] == 1
    stored = rows(sqlite_engine, "SELECT location, reason FROM ingest_reject")
    assert stored == [
        (str(bad.resolve()), "unreadable input: missing column: artist (artist, artist_name, artists)")
    ]
    assert rows(sqlite_engine, "SELECT source_key FROM track") == [("name:singer|song",)]


def test_empty_and_unknown_files_are_unreadable(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.csv", "")
    odd = write(tmp_path / "tracks.xlsx", "x")
    report = ingest_table(sqlite_engine, [empty, odd, tmp_path / "absent.csv"], kind="tracks")
    assert len(report.unreadable) == 3
    assert "empty file" in report.unreadable[0] and "not a CSV, TSV or Parquet" in report.unreadable[1]


PLAYLISTS_CSV = """\
playlist_id,playlist_name,track_uri,track_name,artist
p1,Road Trip,spotify:track:0000000000000000000001,One,A
p1,Road Trip,spotify:track:0000000000000000000002,Two,B
p1,Road Trip,spotify:track:0000000000000000000001,One,A
p1,Road Trip,spotify:track:0000000000000000000003,,C
p1,Road Trip,spotify:track:0000000000000000000004,Four,D
p2,,spotify:track:0000000000000000000002,Two,B
p2,,spotify:track:0000000000000000000005,Five,E
p3,Broken,,,
p1,Road Trip,spotify:track:0000000000000000000006,Six,F
"""


@pytest.mark.parametrize("batch_rows", [2, 100])
def test_playlists_file_order_across_batches(
    sqlite_engine: sa.Engine, tmp_path: Path, batch_rows: int
) -> None:
    path = write(tmp_path / "entries.csv", PLAYLISTS_CSV)
    report = ingest_table(sqlite_engine, [path], kind="playlists", batch_rows=batch_rows, namespace="held")
    assert report.ok
    assert report.loaded == {"playlists": 2, "playlist_tracks": 6}
    entries = rows(
        sqlite_engine,
        """SELECT p.source_key, p.name, p.num_tracks, pt.position, t.title FROM playlist_track pt
           JOIN playlist p ON p.id = pt.playlist_id JOIN track t ON t.id = pt.track_id
           WHERE p.namespace = 'held' ORDER BY p.source_key, pt.position""",
    )
    assert entries == [
        ("table:p1", "Road Trip", 4, 0, "One"),
        ("table:p1", "Road Trip", 4, 1, "Two"),
        ("table:p1", "Road Trip", 4, 2, "One"),
        ("table:p1", "Road Trip", 4, 4, "Four"),
        ("table:p2", "p2", 2, 0, "Two"),
        ("table:p2", "p2", 2, 1, "Five"),
    ]
    reasons = sorted(r[0] for r in rows(sqlite_engine, "SELECT reason FROM ingest_reject"))
    assert reasons == [
        "empty playlist: every entry was rejected",
        "missing field: title",
        "missing field: title",
        "playlist rows not together in the file (playlist 'p1' ended earlier)",
    ]


def test_playlists_explicit_positions_and_duplicates(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    text = "pid,pos,title,artist\n9,2,C,Z\n9,0,A,X\n9,0,A2,X\n9,x,B,Y\n"
    path = write(tmp_path / "p.csv", text)
    report = ingest_table(catalog_engine, [path], kind="playlists")
    assert report.loaded == {"playlists": 1, "playlist_tracks": 2}
    assert sorted(report.reasons.items()) == [("duplicate position", 1), ("invalid position", 1)]
    got = rows(
        catalog_engine,
        "SELECT pt.position, t.title FROM playlist_track pt JOIN track t ON t.id = pt.track_id ORDER BY 1",
    )
    assert got == [(0, "A"), (2, "C")]
    assert ingest_table(catalog_engine, [path], kind="playlists").skipped == 1


def test_parquet_streams_in_batches(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    n = 2_500
    frame = pl.DataFrame(
        {
            "ISRC": [f"GBAAA{i:07d}" for i in range(n)],
            "Title": [f"Song {i}" for i in range(n)],
            "Artist": [f"Band {i % 7}" for i in range(n)],
            "duration_ms": [180_000 + i for i in range(n)],
            "genre": [["rock", "indie"] if i % 2 else [] for i in range(n)],
        }
    )
    path = tmp_path / "tracks.parquet"
    frame.write_parquet(path)
    report = ingest_table(sqlite_engine, [path], kind="tracks", batch_rows=1_000)
    assert report.ok and report.loaded["tracks"] == n and report.rejected == 0
    assert rows(sqlite_engine, "SELECT count(*), count(DISTINCT artist_id), sum(duration_ms) FROM track") == [
        (n, 7, sum(180_000 + i for i in range(n)))
    ]
    assert rows(sqlite_engine, "SELECT count(*) FROM track WHERE genres IS NOT NULL") == [(n // 2,)]


def test_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import app

    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    rowbad = write(tmp_path / "t.csv", "title,artist,duration\nOk,A,200\n,B,100\n")
    result = runner.invoke(app, ["ingest", "table", str(rowbad), "--kind", "tracks"])
    assert result.exit_code == 0, result.output
    assert "loaded 1 tracks; rejected 1 (1 missing field)" in result.output
    colbad = write(tmp_path / "u.csv", "name\nOk\n")
    result = runner.invoke(app, ["ingest", "table", str(colbad), "--kind", "tracks"])
    assert result.exit_code == 1
    assert "missing column: artist" in result.output
    result = runner.invoke(app, ["ingest", "table", str(rowbad), "--kind", "albums"])
    assert result.exit_code == 1 and "unknown table kind" in result.output


def test_invalid_utf8_and_ragged_rows_are_rejected(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"title,artist\nOk,A\nCaf\xe9,B\nFine,C\n")
    report = ingest_table(sqlite_engine, [latin], kind="tracks")
    assert report.ok and report.loaded["tracks"] == 2
    assert dict(report.reasons) == {"invalid UTF-8 in the row": 1}
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(b"title,artist\nOk,A\nToo,Many,Fields\nShort\nAlso ok,B\n")
    report = ingest_table(sqlite_engine, [ragged], kind="tracks")
    assert report.ok and report.loaded["tracks"] == 2
    assert dict(report.reasons) == {"malformed row": 2}
    location = str(ragged.resolve())
    assert rows(
        sqlite_engine, f"SELECT location, reason FROM ingest_reject WHERE location LIKE '{location}%'"
    ) == [
        (f"{location}: row 2", "malformed row (3 fields, the header has 2): 'Too,Many,Fields'"),
        (f"{location}: row 3", "malformed row (1 field, the header has 2): 'Short'"),
    ]


# ----------------------------------------------------------------- parsers (property-based)


def parse(expr_fn, *values: str | None) -> list:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {f"v{i}": [v] for i, v in enumerate(values)}, schema={f"v{i}": pl.String for i in range(len(values))}
    )
    return frame.select(expr_fn(*[pl.col(f"v{i}") for i in range(len(values))]))[:, 0].to_list()


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=c.DURATION_MS_THRESHOLD - 1))
def test_duration_in_seconds_and_clock(seconds: int) -> None:
    clock = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    assert parse(c.duration_ms, None, str(seconds)) == [seconds * 1000]
    assert parse(c.duration_ms, None, clock) == [seconds * 1000]
    assert parse(c.duration_ms, str(seconds * 1000), None) == [seconds * 1000]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=c.DURATION_MS_THRESHOLD, max_value=10**8))
def test_large_duration_is_milliseconds(ms: int) -> None:
    assert parse(c.duration_ms, None, str(ms)) == [ms]


@settings(max_examples=25, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2100, 1, 1),
    )
)
def test_timestamp_round_trip(moment) -> None:  # type: ignore[no-untyped-def]
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    for text in (
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        str(int(moment.timestamp())),
    ):
        assert parse(c.timestamp, text) == [moment], text


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(categories=["L", "N", "Zs"], exclude_characters="|;,"),
            min_size=1,
            max_size=12,
        )
        .map(str.strip)
        .filter(bool),
        min_size=1,
        max_size=5,
    )
)
def test_json_list_round_trip(items: list[str]) -> None:
    expected = [" ".join(unicodedata.normalize("NFC", i).split()) for i in items]
    assert json.loads(parse(c.json_list, " | ".join(items))[0]) == expected


def test_batches_never_cut_a_quoted_field(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_bytes(
        b'\xef\xbb\xbf"title","artist"\r\n'  # a UTF-8 byte-order mark and CRLF line ends
        b'"Line one\r\nline two, with ""quotes""",A\r\n'
        b"Plain,B\r\n"
        b'"Comma, inside",C\r\n'
    )
    report = ingest_table(sqlite_engine, [path], kind="tracks", batch_rows=1)
    assert report.ok and report.loaded["tracks"] == 3 and report.rejected == 0
    titles = sorted(r[0] for r in rows(sqlite_engine, "SELECT title FROM track"))
    assert titles == ["Comma, inside", 'Line one line two, with "quotes"', "Plain"]
