"""Playlist entries are written only when every playlist and track they name is in the catalog."""

from __future__ import annotations

import polars as pl
import pytest
import sqlalchemy as sa

from pipelines.ingest.normalize import build_chunk, raw_tracks_frame
from recsys.catalog import frames, merges
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import CatalogError


def load(engine: sa.Engine, entries: list[tuple[str, int, str]]) -> dict[str, int]:
    chunk = build_chunk(
        raw_tracks_frame(
            {
                "source_key": ["t:1", "t:2", "t:3"],
                "title": ["One", "Two", "Three"],
                "artist_credit": ["A", "B", "A"],
            }
        )
    )
    playlist_keys = sorted({key for key, _, _ in entries if key != "p:ghost"})
    chunk.playlists = frames.conform(
        pl.DataFrame(
            {"source_key": playlist_keys, "name": playlist_keys, "name_key": playlist_keys, "num_tracks": 1}
        ),
        frames.PLAYLISTS,
    )
    chunk.entries = pl.DataFrame(entries, schema=["playlist_key", "position", "track_key"], orient="row")
    with engine.begin() as conn:
        return merges.merge_chunk(conn, chunk, namespace=DEFAULT_NAMESPACE)


def entry_rows(engine: sa.Engine) -> list[tuple[str, int, str]]:
    """Every stored entry as (playlist key, position, track key), in playlist and position order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT p.source_key, e.position, t.source_key FROM playlist_track e
                   JOIN playlist p ON p.id = e.playlist_id JOIN track t ON t.id = e.track_id
                   ORDER BY p.source_key, e.position"""
            )
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_entries_land_in_order_with_their_ids(catalog_engine: sa.Engine) -> None:
    entries = [("p:a", 0, "t:1"), ("p:a", 1, "t:2"), ("p:a", 2, "t:1"), ("p:b", 0, "t:3"), ("p:c", 0, "t:2")]
    assert load(catalog_engine, entries)["playlist_tracks"] == 5
    assert entry_rows(catalog_engine) == entries


@pytest.mark.parametrize(
    ("entries", "count", "first"),
    [
        ([("p:a", 0, "t:1"), ("p:a", 1, "t:9"), ("p:b", 0, "t:9")], 2, "playlist 'p:a', track 't:9'"),
        (
            [("p:a", 0, "t:1"), ("p:ghost", 0, "t:2"), ("p:ghost", 1, "t:9")],
            2,
            "playlist 'p:ghost', track 't:2'",
        ),
        ([("p:ghost", 0, "t:9"), ("p:a", 0, "t:9")], 2, "playlist 'p:ghost', track 't:9'"),
    ],
    ids=["unknown track", "unknown playlist", "both"],
)
def test_entries_naming_what_is_not_in_the_catalog_are_refused(
    catalog_engine: sa.Engine, entries: list[tuple[str, int, str]], count: int, first: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        load(catalog_engine, entries)
    assert f"{count:,} playlist entries name a playlist or track that is not in the catalog" in str(
        caught.value
    )
    assert f"(first: {first})" in str(caught.value)
    with catalog_engine.connect() as conn:  # the chunk's transaction rolled back whole
        assert conn.execute(sa.text("SELECT count(*) FROM playlist_track")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM track")).scalar() == 0
