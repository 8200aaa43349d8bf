"""Bulk catalog reads in batches: the same frames as one tuple per row gave, without holding those tuples."""

from __future__ import annotations

import tracemalloc
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from recsys.catalog import reads
from recsys.catalog.queries import (
    ENTRIES,
    PLAYLISTS,
    TRACKS,
    entries_query,
    playlist_entries,
    playlists_frame,
    playlists_query,
    tracks_frame,
    tracks_query,
)
from recsys.catalog.schema import Listen, Playlist, Track
from recsys.evaluation.listens import listens_from_catalog

# Text that CSV, COPY and drivers each treat specially; '' and NULL must stay apart.
AWKWARD = [
    "",
    "a,b",
    'say "hi"',
    "two\nlines",
    "crlf\r\nend",
    "\r\n",
    "tab\there",
    "back\\slash",
    "\\N",
    "NULL",
    "é ü 日本",
]
BIG_ID = 5_000_000_000  # beyond 32 bits


def old_read(engine: sa.Engine, stmt: sa.Select[*tuple[Any, ...]], schema: dict[str, Any]) -> pl.DataFrame:
    """The read as it was: every row a Python tuple, then one frame."""
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pl.DataFrame(rows, schema=schema, orient="row")


def fill(engine: sa.Engine, entries: int) -> None:
    """Tracks with awkward titles and NULLs, playlists in two namespaces, ``entries`` entries in ``catalog``."""
    tracks = 50
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO artist (id, source_key, name, name_key) VALUES (1, 'a:1', 'A', 'a')")
        )
        for i in range(tracks):
            conn.execute(
                sa.insert(Track).values(
                    id=BIG_ID + i if i % 10 == 9 else i + 1,
                    source_key=f"t:{i}",
                    title=AWKWARD[i % len(AWKWARD)],
                    title_key=f"k{i}",
                    artist_id=None if i % 3 == 0 else 1,
                    artist_name=AWKWARD[(i + 3) % len(AWKWARD)],
                    duration_ms=None if i % 4 == 0 else 1000 * i,
                    recording_key=f"r{i}",
                )
            )
        for pid, namespace in ((1, "catalog"), (2, "catalog"), (BIG_ID, "catalog"), (7, "held-out")):
            conn.execute(
                sa.insert(Playlist).values(
                    id=pid,
                    namespace=namespace,
                    source_key=f"p:{pid}",
                    name=AWKWARD[pid % len(AWKWARD)],
                    name_key="",
                    num_tracks=0,
                    collaborative=None if pid == 2 else pid % 2 == 0,
                )
            )
        conn.execute(
            sa.text(
                f"""INSERT INTO playlist_track (playlist_id, position, track_id)
                    SELECT CASE i % 3 WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE {BIG_ID} END, i / 3,
                           CASE WHEN i % 10 = 9 THEN {BIG_ID} ELSE i % 9 + 1 END
                    FROM (WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {entries - 1})
                          SELECT i FROM s) AS n"""
            )
        )
        conn.execute(sa.text("INSERT INTO playlist_track (playlist_id, position, track_id) VALUES (7, 0, 3)"))
        for i, weight in enumerate([1.0, 0.1, 1e300, 2.5e-10, 3.0]):
            conn.execute(
                sa.insert(Listen).values(
                    listen_key=f"l{i}", source="csv", user_key=AWKWARD[i], artist_id=1, weight=weight
                )
            )


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few rows on either backend, so that every read crosses many batch boundaries."""
    monkeypatch.setattr(reads, "BATCH_ROWS", 7)
    monkeypatch.setattr(reads, "COPY_BLOCK_BYTES", 64)


@pytest.mark.usefixtures("small_batches")
def test_batched_reads_equal_the_old_reads(catalog_engine: sa.Engine) -> None:
    fill(catalog_engine, 300)
    entries = playlist_entries(catalog_engine)
    assert_frame_equal(entries, old_read(catalog_engine, entries_query(), ENTRIES))
    assert entries.height == 300 and entries.schema == pl.Schema(ENTRIES)
    assert entries.row(0) == (1, 0, 1) and entries.row(-1) == (BIG_ID, 99, BIG_ID)
    held = playlist_entries(catalog_engine, namespace="held-out")
    assert_frame_equal(held, old_read(catalog_engine, entries_query("held-out"), ENTRIES))
    assert held.rows() == [(7, 0, 3)]

    playlists = playlists_frame(catalog_engine)
    assert_frame_equal(playlists, old_read(catalog_engine, playlists_query(), PLAYLISTS))
    assert sorted(playlists["playlist_id"].to_list()) == [1, 2, BIG_ID]

    tracks = tracks_frame(catalog_engine)
    assert_frame_equal(tracks, old_read(catalog_engine, tracks_query(), TRACKS))
    assert tracks.height == 50
    assert set(tracks["title"].to_list()) == set(AWKWARD)  # '' among them, and no null
    assert tracks["artist_id"].null_count() == 17 and tracks["duration_ms"].null_count() == 13

    listens = listens_from_catalog(catalog_engine).frame
    schema = {"user_key": pl.String, "item_id": pl.Int64, "weight": pl.Float64}
    stmt = sa.select(Listen.user_key, Listen.artist_id, Listen.weight).where(Listen.artist_id.is_not(None))
    assert_frame_equal(listens, old_read(catalog_engine, stmt, schema))
    assert listens["weight"].to_list() == [1.0, 0.1, 1e300, 2.5e-10, 3.0]


@pytest.mark.usefixtures("small_batches")
def test_empty_results_nulls_and_booleans(catalog_engine: sa.Engine) -> None:
    for frame, schema in (
        (playlist_entries(catalog_engine), ENTRIES),
        (playlists_frame(catalog_engine), PLAYLISTS),
        (tracks_frame(catalog_engine), TRACKS),
    ):
        assert frame.height == 0 and frame.schema == pl.Schema(schema)
    fill(catalog_engine, 30)
    assert playlist_entries(catalog_engine, namespace="nobody").schema == pl.Schema(ENTRIES)
    # One nullable column: a NULL is a row with nothing on it.
    stmt = sa.select(Track.duration_ms).order_by(Track.id)
    one = reads.read_frame(catalog_engine, stmt, {"duration_ms": pl.Int64})
    assert_frame_equal(one, old_read(catalog_engine, stmt, {"duration_ms": pl.Int64}))
    assert one.height == 50 and one["duration_ms"].null_count() == 13
    pairs = sa.select(Playlist.id, Playlist.collaborative).order_by(Playlist.id)
    flags = reads.read_frame(catalog_engine, pairs, {"id": pl.Int64, "collaborative": pl.Boolean})
    assert_frame_equal(flags, old_read(catalog_engine, pairs, {"id": pl.Int64, "collaborative": pl.Boolean}))
    assert flags.rows() == [(1, False), (2, None), (7, False), (BIG_ID, True)]


def test_a_read_holds_no_python_object_per_row(
    catalog_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defect: ``.all()`` held a tuple per row. Now Python allocations stay within a batch."""
    monkeypatch.setattr(reads, "BATCH_ROWS", 2_000)
    monkeypatch.setattr(reads, "COPY_BLOCK_BYTES", 64 << 10)
    entries = 60_000
    fill(catalog_engine, entries)

    def python_peak(read: Any) -> tuple[int, pl.DataFrame]:
        tracemalloc.start()
        try:
            frame = read()
            return tracemalloc.get_traced_memory()[1], frame
        finally:
            tracemalloc.stop()

    old_peak, old = python_peak(lambda: old_read(catalog_engine, entries_query(), ENTRIES))
    new_peak, new = python_peak(lambda: playlist_entries(catalog_engine))
    assert_frame_equal(new, old)
    assert old_peak > entries * 100  # a tuple per row and then some: the defect, measured
    assert new_peak < old_peak / 5, (new_peak, old_peak)
