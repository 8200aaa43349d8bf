"""Hostile tables and listening histories: each bad row costs a reject, the rows beside it land.

Every input is generated here: megabyte ids, users and MusicBrainz ids (which no
PostgreSQL index entry holds: the whole chunk rolled back), durations and weights no
column holds, names past a lowered ``RECSYS_MAX_NAME_CHARS``, rows longer than the CSV
reader's block, Parquet row groups that expand past ``RECSYS_MAX_INPUT_BYTES`` (a
dictionary-encoded value repeated on every row) and Parquet columns nested too deep.
The last test runs the real commands over such files under a memory limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines.ingest import csv_reader, streaming
from pipelines.ingest.guards import MAX_ID_BYTES, InputLimits
from pipelines.ingest.listens import ingest_listens
from pipelines.ingest.streaming import open_table
from pipelines.ingest.table_batch import INVALID, ROW
from pipelines.ingest.tables import ingest_table
from tests.cli.child import recsys
from tests.ingest.test_hostile_mpd import ADDRESS_SPACE, noise

LONG_ID = f"longer than {MAX_ID_BYTES} bytes: not an id"


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def found_rejects(engine: sa.Engine) -> dict[str, str]:
    """reject location (without the file's folder) -> reason."""
    out = {}
    for location, reason in rows(engine, "SELECT location, reason FROM ingest_reject"):
        out[location.rsplit("/", 1)[-1]] = reason
    return out


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- RECSYS_MAX_NAME_CHARS


def test_the_name_limit_reaches_tables_and_listens(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    limits = InputLimits(max_name_chars=10)
    long_title, long_artist, long_list = "T" * 30, "Artist " * 5, "Playlist " * 4
    tracks = write(tmp_path / "tracks.csv", f"id,title,artist\nx1,{long_title},Band\nx2,Short,Band\n")
    lists = write(
        tmp_path / "lists.csv", f"playlist_id,playlist_name,title,artist\np1,{long_list},Short,Band\n"
    )
    listens = write(
        tmp_path / "listens.csv", f"user,artist,timestamp\nu1,{long_artist},2020-01-01T00:00:00Z\n"
    )

    assert ingest_table(catalog_engine, [tracks], kind="tracks", limits=limits).ok
    assert ingest_table(catalog_engine, [lists], kind="playlists", limits=limits).ok
    assert ingest_listens(catalog_engine, [listens], fmt="csv", limits=limits).ok

    assert sorted(
        rows(catalog_engine, "SELECT source_key, title FROM track WHERE source_key LIKE 'table:%'")
    ) == [
        ("table:x1", "T" * 10),
        ("table:x2", "Short"),
    ]
    assert rows(catalog_engine, "SELECT name FROM playlist") == [(long_list[:10],)]
    assert rows(catalog_engine, "SELECT name FROM artist WHERE source_key LIKE 'name:artist%'") == [
        (long_artist.strip()[:10],)
    ]
    reasons = sorted(found_rejects(catalog_engine).items())
    assert reasons == [
        (
            "artist name:artist artist artist artist artist",
            "name of 34 characters cut to 10 (RECSYS_MAX_NAME_CHARS)",
        ),
        ("playlist table:p1", "name of 35 characters cut to 10 (RECSYS_MAX_NAME_CHARS)"),
        ("track table:x1", "title of 30 characters cut to 10 (RECSYS_MAX_NAME_CHARS)"),
    ]


# ---------------------------------------------------------------- ids that are not ids


def test_ids_users_and_mbids_that_are_not_ids_are_rejected_and_the_chunk_lands(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    huge = noise(1_000_000, 1)
    tracks = write(tmp_path / "tracks.csv", f"id,title,artist\nx1,One,Band\n{huge},Two,Band\nx3,Three,Band\n")
    parquet = tmp_path / "tracks.parquet"
    pl.DataFrame(
        {"id": ["p1", noise(1_000_000, 2), "p3"], "title": ["Four", "Five", "Six"], "artist": "Band"}
    ).write_parquet(parquet)
    lists = write(
        tmp_path / "lists.csv",
        f"playlist_id,title,artist\nq1,Seven,Band\n{noise(3_000, 3)},Eight,Band\nq3,Nine,Band\n",
    )
    listens = write(
        tmp_path / "listens.csv",
        f"user,id,title,artist\nu1,x1,One,Band\n{noise(3_000, 4)},x1,One,Band\nu3,{noise(3_000, 5)},Ten,Band\n",
    )
    mbid = "0f6f0bb2-7a65-4ad7-a1a3-2ec5e6c4c6c8"
    log = tmp_path / "log.tsv"
    log.write_text(
        f"user_1\t2009-05-04T23:08:57Z\t\tBand\t{mbid}\tEleven\n"
        f"user_1\t2009-05-04T23:09:57Z\t\tBand\t{noise(3_000, 6)}\tTwelve\n"
        f"{noise(3_000, 7)}\t2009-05-04T23:10:57Z\t\tBand\t\tThirteen\n"
        f"user_1\t2009-05-04T23:11:57Z\t\tBand\tnot-a-uuid\tFourteen\n",
        encoding="utf-8",
    )

    assert ingest_table(catalog_engine, [tracks, parquet], kind="tracks").ok
    assert ingest_table(catalog_engine, [lists], kind="playlists").ok
    assert ingest_listens(catalog_engine, [listens], fmt="csv").ok
    assert ingest_listens(catalog_engine, [log], fmt="lastfm-1k").ok

    assert sorted(r[0] for r in rows(catalog_engine, "SELECT title FROM track")) == sorted(
        ["One", "Three", "Four", "Six", "Seven", "Nine", "Eleven"]
    )
    assert rows(catalog_engine, "SELECT source_key FROM track WHERE title = 'Eleven'") == [(f"mbid:{mbid}",)]
    assert sorted(rows(catalog_engine, "SELECT user_key FROM listen")) == [
        ("lastfm1k:user_1",),
        ("table:u1",),
    ]
    assert rows(catalog_engine, "SELECT max(length(source_key)) FROM track")[0][0] < 100
    reasons = found_rejects(catalog_engine)
    assert reasons == {
        "tracks.csv: row 2": f"invalid track_id: {LONG_ID}",
        "tracks.parquet: row 2": f"invalid track_id: {LONG_ID}",
        "lists.csv: row 2": f"invalid playlist_id: {LONG_ID}",
        "listens.csv: row 2": f"invalid user: {LONG_ID}",
        "listens.csv: row 3": f"invalid track_id: {LONG_ID}",
        "log.tsv: row 2": f"invalid track_mbid: {reasons['log.tsv: row 2'].split(': ', 1)[1]}",
        "log.tsv: row 3": f"invalid userid: {LONG_ID}",
        "log.tsv: row 4": "invalid track_mbid: 'not-a-uuid' (a MusicBrainz id is a UUID)",
    }
    assert reasons["log.tsv: row 2"].endswith("(a MusicBrainz id is a UUID)")


def test_an_id_prefix_longer_than_an_id_is_refused(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    from recsys.errors import InputError

    tracks = write(tmp_path / "tracks.csv", "id,title,artist\nx1,One,Band\n")
    with pytest.raises(InputError, match="--id-prefix of 600 bytes: an id prefix is at most 64"):
        ingest_table(sqlite_engine, [tracks], kind="tracks", id_prefix="p" * 600)


# ---------------------------------------------------------------- numbers no column holds


def test_durations_and_weights_no_column_holds_are_rejected(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    tracks = write(
        tmp_path / "tracks.csv",
        "id,title,artist,duration_ms,duration\n"
        "x1,One,Band,1e30,\nx2,Two,Band,2147483648,\nx3,Three,Band,,99999999999\nx4,Four,Band,215000,\n",
    )
    listens = write(
        tmp_path / "listens.csv",
        "user,artist,weight\nu1,Band,nan\nu2,Band,inf\nu3,Band,-inf\nu4,Band,0\nu5,Band,2.5\n",
    )

    assert ingest_table(catalog_engine, [tracks], kind="tracks").ok
    assert ingest_listens(catalog_engine, [listens], fmt="csv").ok

    assert rows(catalog_engine, "SELECT source_key, duration_ms FROM track") == [("table:x4", 215_000)]
    assert rows(catalog_engine, "SELECT user_key, weight FROM listen") == [("table:u5", 2.5)]
    assert found_rejects(catalog_engine) == {
        "tracks.csv: row 1": "invalid duration: '1e30'",
        "tracks.csv: row 2": "invalid duration: '2147483648'",
        "tracks.csv: row 3": "invalid duration: '99999999999'",
        "listens.csv: row 1": "invalid weight: 'nan'",
        "listens.csv: row 2": "invalid weight: 'inf'",
        "listens.csv: row 3": "invalid weight: '-inf'",
        "listens.csv: row 4": "invalid weight: '0'",
    }


# ---------------------------------------------------------------- Parquet inputs meet the input limits


def dictionary_bomb(path: Path, rows_: int, value_bytes: int) -> Path:
    """A Parquet file whose one id value, dictionary-encoded, is repeated on every row: tiny on disk."""
    ids = pa.DictionaryArray.from_arrays(pa.array([0] * rows_, pa.int32()), pa.array(["x" * value_bytes]))
    table = pa.table({"id": ids, "title": [f"Bomb {i}" for i in range(rows_)], "artist": ["Band"] * rows_})
    pq.write_table(table, path, use_dictionary=True, row_group_size=rows_)
    return path


def nested_column(path: Path, depth: int) -> Path:
    kind: pa.DataType = pa.string()
    value: object = "x"
    for _ in range(depth):
        kind, value = pa.list_(kind), [value]
    pq.write_table(pa.table({"title": ["Deep"], "artist": ["Band"], "extra": pa.array([value], kind)}), path)
    return path


def test_parquet_files_meet_the_size_and_depth_limits(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    limits = InputLimits(max_input_bytes=1 << 20, max_json_depth=2)
    bomb = dictionary_bomb(tmp_path / "a_bomb.parquet", 2_000, 1_000)  # 2 MB of ids once expanded
    deep = nested_column(tmp_path / "b_deep.parquet", 100)  # past what Arrow itself reads
    good = tmp_path / "c_good.parquet"
    pl.DataFrame(
        {"id": ["g1", "g2"], "title": ["Good", "Better"], "artist": "Band", "genres": [["rock"], []]}
    ).write_parquet(good)
    nested = nested_column(tmp_path / "d_nested.parquet", 3)
    lists = nested_column(tmp_path / "e_lists.parquet", 2)  # within the depth limit, but not text

    report = ingest_table(catalog_engine, [bomb, deep, good, nested, lists], kind="tracks", limits=limits)

    assert sorted(r[0] for r in rows(catalog_engine, "SELECT title FROM track")) == ["Better", "Good"]
    assert rows(catalog_engine, "SELECT genres FROM track WHERE title = 'Good'") in (
        [('["rock"]',)],
        [(["rock"],)],
    )
    named = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line.split(": ", 1)[1] for line in report.unreadable}
    assert named.keys() == {"a_bomb.parquet", "b_deep.parquet", "d_nested.parquet", "e_lists.parquet"}
    assert named["a_bomb.parquet"] == (
        "unreadable after row 0: row group 0 expands to more than 1,048,576 bytes (RECSYS_MAX_INPUT_BYTES)"
    )
    assert named["b_deep.parquet"].startswith("cannot be read as a table (Parquet schema too deeply nested")
    assert named["d_nested.parquet"] == "columns nested more than 2 levels deep (RECSYS_MAX_JSON_DEPTH)"
    assert named["e_lists.parquet"] == (
        "cannot be read as a table (column 'extra' holds list<element: list<element: string>>: "
        "neither a value nor a list of values)"
    )
    reasons = found_rejects(catalog_engine)
    assert reasons["a_bomb.parquet"] == f"unreadable input: {named['a_bomb.parquet']}"
    assert reasons["d_nested.parquet"] == f"unreadable input: {named['d_nested.parquet']}"
    # Within the limit, the same file lands (each row's long id rejected).
    again = ingest_table(catalog_engine, [bomb], kind="tracks", limits=InputLimits(max_input_bytes=8 << 20))
    assert again.ok and again.rejected == 2_000


def test_parquet_batches_are_bounded_in_bytes(tmp_path: Path) -> None:
    path = dictionary_bomb(tmp_path / "wide.parquet", 400, 40_000)  # 16 MB of ids once expanded
    table = open_table(path, batch_bytes=1 << 20)
    batches = list(table.batches(10**9))
    assert len(batches) >= 16
    assert all(b.estimated_size() <= 2 << 20 for b in batches)
    frame = pl.concat(batches)
    assert frame[ROW].to_list() == list(range(1, 401)) and frame[INVALID].null_count() == 400
    assert frame["id"].str.len_bytes().unique().to_list() == [40_000]


# ---------------------------------------------------------------- CSV rows longer than the reader's block


def test_lines_longer_than_the_block_are_read_on_their_own_and_the_rows_after_them_land(
    catalog_engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow stopped the file at a row longer than its block; each such line is now read alone (up to
    MAX_ROW_BYTES: a longer one is a rejected row) and every row after it is read."""
    block = 64 << 10
    monkeypatch.setattr(streaming, "BLOCK_BYTES", block)
    monkeypatch.setattr(csv_reader, "MAX_ROW_BYTES", 4 * block)
    path = tmp_path / "long.csv"
    lines = ["title,artist"]
    lines += [f"Song {i},Band" for i in range(1, 51)]  # rows 1-50
    lines.append('"' + "x" * (3 * block) + '",Band')  # row 51: one quoted field of three blocks
    lines += ["Song 52,Band", "", "Song 53,Band"]
    lines.append("y" * (block + 10) + ",Band")  # row 54: a little longer than a block, unquoted
    lines.append("z" * (5 * block) + ",Band")  # row 55, straight after it: longer than MAX_ROW_BYTES
    lines += [f"Song {i},Band" for i in range(56, 101)]
    lines.append("Tail,Band," + "w" * (2 * block))  # row 101: the last, one field too many, no line end
    path.write_text("\r\n".join(lines), encoding="utf-8")

    frame = pl.concat(open_table(path, block_bytes=block, batch_bytes=block).batches(10**9))
    assert frame[ROW].to_list() == list(range(1, 102))
    assert frame["title"][50] == "x" * (3 * block) and frame["title"][53] == "y" * (block + 10)
    invalid = frame.filter(pl.col(INVALID).is_not_null())
    assert invalid[ROW].to_list() == [55, 101]
    assert invalid[INVALID].to_list() == [
        f"a row longer than {4 * block:,} bytes (the longest a text table may hold)",
        "malformed row (3 fields, the header has 2): 'Tail,Band," + "w" * 70 + "'",
    ]

    report = ingest_table(catalog_engine, [path], kind="tracks")
    assert report.ok, report.unreadable
    titles = {r[0] for r in rows(catalog_engine, "SELECT title FROM track")}
    assert titles == {f"Song {i}" for i in range(1, 101) if i not in (51, 54, 55)} | {
        "x" * 1_000,
        "y" * 1_000,
    }
    assert sorted(found_rejects(catalog_engine).items()) == [
        ("long.csv: row 101", invalid[INVALID][1]),
        ("long.csv: row 55", invalid[INVALID][0]),
        (
            f"track name:band|{'x' * 1_000}",
            f"title of {3 * block:,} characters cut to 1,000 (RECSYS_MAX_NAME_CHARS)",
        ),
        (
            f"track name:band|{'y' * 1_000}",
            f"title of {block + 10:,} characters cut to 1,000 (RECSYS_MAX_NAME_CHARS)",
        ),
    ]


def test_an_artist_named_with_punctuation_alone_keys_within_an_index_entry(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    """Such a name keys on its lower-cased self ("!!!"): a megabyte of punctuation became a megabyte key."""
    marks = "".join(random_marks(1_000_000))
    listens = write(tmp_path / "listens.csv", f"user,artist\nu1,{marks}\nu2,!!!\n")

    report = ingest_listens(catalog_engine, [listens], fmt="csv")

    assert report.ok and report.loaded["listens"] == 2
    keys = sorted(r[0] for r in rows(catalog_engine, "SELECT source_key FROM artist"))
    assert keys[0] == "name:!!!" and len(keys[1].encode()) <= 1_005


def random_marks(n: int) -> list[str]:
    import random

    return random.Random(9).choices("!?.:-*%$#@()[]{}", k=n)


def test_a_namespace_no_column_holds_is_refused_in_one_line(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    from recsys.errors import InputError

    lists = write(tmp_path / "lists.csv", "playlist_id,title,artist\np1,One,Band\n")
    with pytest.raises(InputError, match="--namespace of 65 characters: a namespace is at most 64"):
        ingest_table(catalog_engine, [lists], kind="playlists", namespace="n" * 65)
    assert ingest_table(catalog_engine, [lists], kind="playlists", namespace="n" * 64).ok


# ---------------------------------------------------------------- the commands, under a memory limit


def write_hostile_tables(folder: Path) -> None:
    """Good rows among hostile ones: a 50 MB field, a line past MAX_ROW_BYTES, a 1 MB Parquet id, a
    Parquet file whose one dictionary value stands for a terabyte of text."""
    folder.mkdir()
    with open(folder / "tracks.csv", "w", encoding="utf-8") as out:
        out.write("id,title,artist\n")
        out.writelines(f"c{i},Song {i},Band {i % 7}\n" for i in range(1, 101))
        out.write("c101," + "t" * (50 << 20) + ",Band\n")  # a 50 MB title: cut, with a reject row
        out.writelines(f"c{i},Song {i},Band {i % 7}\n" for i in range(102, 201))
    pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(1, 51)]
            + [noise(1_000_000, 11)]
            + [f"p{i}" for i in range(52, 101)],
            "title": [f"Parquet {i}" for i in range(1, 101)],
            "artist": "Band",
        }
    ).write_parquet(folder / "tracks.parquet")
    dictionary_bomb(folder / "bomb.parquet", 1_000_000, 1_000_000)
    with open(folder / "listens.csv", "w", encoding="utf-8") as out:
        out.write("user,artist,timestamp\n")
        out.writelines(f"u{i},Band {i % 7},2020-01-01T00:00:{i % 60:02d}Z\n" for i in range(1, 101))
        out.write("u" * (50 << 20) + ",Band,2020-01-02T00:00:00Z\n")  # a 50 MB user: rejected
        out.write("v" * (70 << 20) + ",Band,2020-01-03T00:00:00Z\n")  # past MAX_ROW_BYTES: rejected
        out.writelines(f"u{i},Band {i % 7},2020-01-01T00:01:{i % 60:02d}Z\n" for i in range(103, 201))


@pytest.mark.slow
def test_the_table_commands_survive_hostile_inputs_under_a_memory_limit(
    catalog_url: str, tmp_path: Path
) -> None:
    from recsys.catalog import db

    engine = db.make_engine(catalog_url)
    db.upgrade(engine)
    folder = tmp_path / "tables"
    write_hostile_tables(folder)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"RECSYS_DATABASE_URL": catalog_url}
        return recsys(*args, env=env, timeout=600, address_space=ADDRESS_SPACE)

    table = run(
        "ingest",
        "table",
        *(str(folder / f) for f in ("tracks.csv", "tracks.parquet", "bomb.parquet")),
        "--kind",
        "tracks",
    )
    listens = run("ingest", "listens", str(folder / "listens.csv"), "--format", "csv")

    assert table.returncode == 1, (table.returncode, table.stderr[-3_000:])  # the bomb: never a signal
    assert listens.returncode == 0, (listens.returncode, listens.stderr[-3_000:])
    for result in (table, listens):
        assert "Traceback" not in result.stderr, result.stderr[-3_000:]
    assert [line for line in table.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {(folder / 'bomb.parquet').resolve()}: unreadable after row 0: row group 0 expands to more "
        f"than {256 << 20:,} bytes (RECSYS_MAX_INPUT_BYTES)"
    ]
    try:
        with engine.connect() as conn:
            tracks = conn.execute(sa.text("SELECT source_key, length(title) FROM track")).all()
            users = conn.execute(sa.text("SELECT count(*), max(length(user_key)) FROM listen")).one()
            found = conn.execute(sa.text("SELECT location, reason FROM ingest_reject")).all()
        lengths = dict(tracks)  # type: ignore[arg-type]
        assert {f"table:c{i}" for i in range(1, 201)} <= lengths.keys() and lengths["table:c101"] == 1_000
        assert {f"table:p{i}" for i in range(1, 101) if i != 51} <= lengths.keys()
        assert len(lengths) == 299  # the listens name artists alone: no tracks
        assert tuple(users) == (198, len("table:u200"))
        reasons = {location.rsplit("/", 1)[-1]: reason for location, reason in found}
        assert reasons["tracks.parquet: row 51"] == f"invalid track_id: {LONG_ID}"
        assert reasons["track table:c101"].startswith(f"title of {50 << 20:,} characters cut to 1,000")
        assert reasons["listens.csv: row 101"] == f"invalid user: {LONG_ID}"
        assert reasons["listens.csv: row 102"] == (
            f"a row longer than {64 << 20:,} bytes (the longest a text table may hold)"
        )
        assert reasons["bomb.parquet"].startswith("unreadable input: unreadable after row 0: row group 0")
    finally:
        engine.dispose()


def test_parquet_values_polars_does_not_take_are_read_as_text(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    """A decimal wider than Polars holds made it panic; bytes that are not UTF-8 failed the whole file."""
    import decimal

    path = tmp_path / "types.parquet"
    table = pa.table(
        {
            "title": ["One", "Two", "Three"],
            "artist": ["Band", "Band", "Band"],
            "year": pa.array([decimal.Decimal("1999"), None, decimal.Decimal("2001")], pa.decimal256(50, 0)),
            "album": pa.array([b"Album", b"\xff\xfe", b"Other"], pa.binary()),
            "duration": pa.array([181.5, None, 200.0], pa.float16()),
        }
    )
    pq.write_table(table, path)

    report = ingest_table(catalog_engine, [path], kind="tracks")

    assert report.ok, report.unreadable
    found = sorted(rows(catalog_engine, "SELECT title, year, duration_ms FROM track"))
    assert found == [("One", 1999, 181_500), ("Three", 2001, 200_000)]
    assert found_rejects(catalog_engine) == {"types.parquet: row 2": "invalid UTF-8 in the row"}
