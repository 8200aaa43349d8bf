"""Distinct tracks of a chunk: the first occurrence, filled in by later ones (hypothesis against a reference)."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingest.normalize import ALBUM_ROW, RAW_TRACK, distinct_tracks


def reference(raw: pl.DataFrame) -> list[dict[str, Any]]:
    """The rule, row by row: the first occurrence of a key gives the row; each value it lacks
    comes from the first later occurrence that has it, and the album (title, URI and the row
    it came from) from the first occurrence that has either."""
    out: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(raw.iter_rows(named=True)):
        has_album = row["album_uri"] is not None or row["album_title"] is not None
        seen = out.get(row["source_key"])
        if seen is None:
            seen = out[row["source_key"]] = dict(row)
            seen[ALBUM_ROW] = index if has_album else None
            continue
        for column in ("artist_uri", "duration_ms", "isrc", "release_year"):
            if seen[column] is None:
                seen[column] = row[column]
        if has_album and seen["album_uri"] is None and seen["album_title"] is None:
            seen.update(album_uri=row["album_uri"], album_title=row["album_title"])
            seen[ALBUM_ROW] = index
    return list(out.values())


maybe = st.none() | st.sampled_from(["a", "b", "c"])
occurrence = st.fixed_dictionaries(
    {
        "source_key": st.sampled_from(["t1", "t2", "t3", "t4", "t5"]),
        "title": st.sampled_from(["x", "y"]),
        "artist_credit": st.sampled_from(["p", "q"]),
        "artist_uri": maybe,
        "album_title": maybe,
        "album_uri": maybe,
        "duration_ms": st.none() | st.integers(1, 4),
        "isrc": maybe,
        "release_year": st.none() | st.integers(1990, 1992),
    }
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(occurrence, min_size=1, max_size=25))
def test_distinct_tracks_follow_the_rule(rows: list[dict[str, Any]]) -> None:
    raw = pl.DataFrame(rows).select(
        pl.col(c).cast(d) if c in rows[0] else pl.lit(None, d).alias(c) for c, d in RAW_TRACK.items()
    )
    got = distinct_tracks(raw)
    assert got.columns == [*RAW_TRACK, ALBUM_ROW]
    assert got.to_dicts() == reference(raw)


def test_a_frame_where_no_row_has_a_value_takes_first_occurrences() -> None:
    """A value no row of the frame holds (MPD has no ISRC) does not send every track to the aggregation."""
    raw = pl.DataFrame(
        {"source_key": ["t1", "t2", "t1"], "title": ["a", "b", "c"], "duration_ms": [None, 5, 7]}
    ).select(
        pl.col(c).cast(d) if c in ("source_key", "title", "duration_ms") else pl.lit(None, d).alias(c)
        for c, d in RAW_TRACK.items()
    )
    got = distinct_tracks(raw)
    assert got.select("source_key", "title", "duration_ms").rows() == [("t1", "a", 7), ("t2", "b", 5)]
