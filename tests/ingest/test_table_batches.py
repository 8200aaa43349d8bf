"""Reading CSV tables in bounded batches: fields kept byte for byte, malformed rows rejected, memory bounded."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingest import csv_reader, streaming
from pipelines.ingest.streaming import open_table
from pipelines.ingest.table_batch import INVALID, ROW
from pipelines.ingest.tables import ingest_table
from recsys.errors import InputError


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def read(path: Path, batch_rows: int, **options: object) -> list[pl.DataFrame]:
    return list(open_table(path, **options).batches(batch_rows))  # type: ignore[arg-type]


def test_blank_line_inside_a_quoted_field_survives(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    field = b"Line one\r\n\r\nline three, after a blank line\n\nand a bare LF one"
    path.write_bytes(
        b'\xef\xbb\xbftitle,artist\r\n"' + field + b'",A\r\n\r\nPlain,B\r\n"Two""\r\n\r\nblank lines",C\r\n'
    )
    batches = read(path, 1)
    assert [b.height for b in batches] == [1, 1, 1]
    frame = pl.concat(batches)
    assert frame["title"].to_list()[0].encode() == field
    assert frame["title"].to_list()[2] == 'Two"\r\n\r\nblank lines'
    assert frame[ROW].to_list() == [1, 2, 3]  # the blank line between records is not a row

    report = ingest_table(catalog_engine, [path], kind="tracks", batch_rows=1)
    assert report.ok and report.loaded["tracks"] == 3 and report.rejected == 0
    titles = sorted(r[0] for r in rows(catalog_engine, "SELECT title FROM track"))
    assert titles == [
        "Line one line three, after a blank line and a bare LF one",
        "Plain",
        'Two" blank lines',
    ]


def stray_quote_csv(path: Path, n: int) -> Path:
    """``n`` data rows; row 3 holds an unbalanced quote (``12"``), row 10 one field too many, row 20 no artist."""
    lines = ["title,artist,duration"]
    for i in range(1, n + 1):
        if i == 3:
            lines.append('Song 12" Mix,Band,200')
        elif i == 10:
            lines.append("Too,Many,Fields,Here")
        elif i == 20:
            lines.append("No Artist,,200")
        else:
            lines.append(f"Song {i},Band {i % 7},{150 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_stray_quote_keeps_batches_bounded(tmp_path: Path) -> None:
    path = stray_quote_csv(tmp_path / "stray.csv", 1_000)
    batches = read(path, 100)
    assert [b.height for b in batches] == [100] * 10
    frame = pl.concat(batches)
    assert frame[ROW].to_list() == list(range(1, 1_001))
    assert frame.row(2, named=True)["title"] == 'Song 12" Mix'
    malformed = frame.filter(pl.col(INVALID).is_not_null())
    assert malformed[ROW].to_list() == [10]
    assert malformed[INVALID][0] == "malformed row (4 fields, the header has 3): 'Too,Many,Fields,Here'"


def test_stray_quote_file_lands_its_good_rows(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    path = stray_quote_csv(tmp_path / "stray.csv", 1_000)
    report = ingest_table(catalog_engine, [path], kind="tracks", batch_rows=100)
    assert report.ok, report.unreadable
    assert report.loaded["tracks"] == 998 and report.rejected == 2
    assert dict(report.reasons) == {"malformed row": 1, "missing field": 1}
    location = str(path.resolve())
    assert dict(rows(catalog_engine, "SELECT location, reason FROM ingest_reject")) == {
        f"{location}: row 10": "malformed row (4 fields, the header has 3): 'Too,Many,Fields,Here'",
        f"{location}: row 20": "missing field: artist",
    }
    assert rows(catalog_engine, "SELECT title, duration_ms FROM track WHERE title LIKE '%\"%'") == [
        ('Song 12" Mix', 200_000)
    ]
    # One ingest batch per file, committed in chunks; a second run changes nothing.
    assert rows(catalog_engine, "SELECT status, loaded, rejected FROM ingest_batch") == [("done", 998, 2)]
    again = ingest_table(catalog_engine, [path], kind="tracks", batch_rows=100)
    assert again.skipped == 1
    assert rows(catalog_engine, "SELECT count(*) FROM track") == [(998,)]
    assert rows(catalog_engine, "SELECT count(*) FROM ingest_reject") == [(2,)]


def test_many_rows_come_in_batches_bounded_in_bytes(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    n = 20_000
    path.write_text("title,artist\n" + "".join(f"Title number {i},Artist {i % 97}\n" for i in range(n)))
    limit = 64 << 10
    batches = read(path, 10**9, block_bytes=16 << 10, batch_bytes=limit)
    assert len(batches) > 10  # about 600 KiB of text
    for batch in batches:
        assert batch.estimated_size() <= 2 * limit
    assert pl.concat(batches)[ROW].to_list() == list(range(1, n + 1))


def test_a_huge_field_of_many_lines_stops_the_file_within_bounded_memory(
    sqlite_engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row longer than the block made of short lines (inside quotes) cannot be told from its neighbours
    without parsing: the file stops there (a single long line is read on its own: test_hostile_tables)."""
    path = tmp_path / "huge.csv"
    block = 64 << 10
    good = "".join(f"Song {i},Band\n" for i in range(1, 101))
    field = "\n".join(["x" * 1_000] * (40 * block // 1_000))
    path.write_text("title,artist\n" + good + '"' + field + '",Band\nAfter,Band\n')
    table = open_table(path, block_bytes=block, batch_bytes=block)
    seen = 0
    with pytest.raises(InputError, match=f"a row longer than {block:,} bytes"):
        for batch in table.batches(10**9):
            assert batch.estimated_size() <= 2 * block  # never the huge field
            seen += batch.height
    assert seen == 100

    monkeypatch.setattr(streaming, "BLOCK_BYTES", block)
    report = ingest_table(sqlite_engine, [path], kind="tracks")
    assert report.loaded["tracks"] == 100
    assert report.unreadable == [
        f"{path.resolve()}: unreadable after row 100: a row longer than {block:,} bytes "
        "(the longest a text table may hold)"
    ]
    assert rows(sqlite_engine, "SELECT status, loaded FROM ingest_batch") == [("failed", 100)]


def test_a_stretch_of_malformed_rows_is_bounded(
    sqlite_engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "MAX_MALFORMED", 50)
    path = tmp_path / "wrong.csv"
    good = "".join(f"Song {i},Band\n" for i in range(1, 11))
    path.write_text("title,artist\n" + good + "one field only\n" * 200 + good)
    table = open_table(path, block_bytes=64)  # a few rows a block: the good ones come first
    seen = []
    with pytest.raises(InputError, match="more than 50 malformed rows in one stretch of the file"):
        for batch in table.batches(10**9):
            seen.extend(batch[ROW].to_list())
    assert seen == list(range(1, 11))

    monkeypatch.setattr(streaming, "BLOCK_BYTES", 64)
    report = ingest_table(sqlite_engine, [path], kind="tracks")
    assert report.loaded["tracks"] == 10
    assert report.unreadable == [
        f"{path.resolve()}: unreadable after row 10: more than 50 malformed rows in one stretch of the "
        "file (the first at row 11: malformed row (1 field, the header has 2): 'one field only')"
    ]


def test_files_of_one_line_without_a_line_end(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_bytes(b"\xef\xbb\xbftitle,artist")
    table = open_table(header)
    assert table.columns == ["title", "artist"] and list(table.batches(10)) == []
    row = tmp_path / "row.tsv"
    row.write_bytes(b"u1\tA")
    table = open_table(row, has_header=False, columns=["user", "artist"], quote=None)
    assert [b.rows() for b in table.batches(10)] == [[(1, None, "u1", "A")]]


def test_bytes_that_are_not_utf8_stop_a_strict_file(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_bytes(b"u1\tA\nu2\tCaf\xe9\n")
    table = open_table(path, has_header=False, columns=["user", "artist"], quote=None)
    with pytest.raises(InputError, match="bytes that are not UTF-8"):
        list(table.batches(10))
    lossy = open_table(path, has_header=False, columns=["user", "artist"], quote=None, lossy=True)
    assert pl.concat(lossy.batches(1))["artist"].to_list() == ["A", "Caf\ufffd"]


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(
        st.one_of(
            st.lists(st.text(alphabet='ab ,"\r\n\t;é', max_size=6), min_size=3, max_size=3),
            st.lists(st.text(alphabet="ab ,é", max_size=4), min_size=1, max_size=5),
            st.just(None),  # a blank line
        ),
        max_size=40,
    ),
    crlf=st.booleans(),
    batch_rows=st.integers(min_value=1, max_value=7),
)
def test_rows_match_pythons_csv_module(records: list[list[str] | None], crlf: bool, batch_rows: int) -> None:
    """Row numbers, fields and malformed rows agree with ``csv`` whatever the block and batch cuts."""
    end = "\r\n" if crlf else "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=end)
    writer.writerow(["a", "b", "c"])
    for record in records:
        if record is None:
            out.write(end)
        elif record == [""]:
            out.write('""' + end)  # one empty field (csv.writer would write a blank line)
        else:
            writer.writerow(record)
    data = out.getvalue().encode()
    expected: list[tuple[object, ...]] = []
    parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]
    for values in (v for v in parsed if v):
        if len(values) == 3:
            expected.append(("ok", *[v or None for v in values]))
        else:
            expected.append(("malformed", len(values)))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(data)
        batches = read(path, batch_rows, block_bytes=256, batch_bytes=1 << 20)
    got: list[tuple[object, ...]] = []
    for batch in batches:
        assert 0 < batch.height <= batch_rows
        for row in batch.iter_rows(named=True):
            if row[INVALID] is None:
                got.append(("ok", row["a"], row["b"], row["c"]))
            else:
                got.append(("malformed", int(row[INVALID].split(" ", 3)[2].removeprefix("("))))
    assert got == expected
    numbers = [n for b in batches for n in b[ROW].to_list()]
    assert numbers == list(range(1, len(expected) + 1))
