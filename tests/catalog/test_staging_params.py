"""Values bound into the loader's copied-out queries reach PostgreSQL as they are, ``%`` included."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import sqlalchemy as sa

from pipelines.ingest.tables import ingest_table
from recsys.catalog import staging


def test_a_bound_value_with_a_percent_sign_is_not_doubled(catalog_engine: sa.Engine) -> None:
    with catalog_engine.connect() as conn:
        frame = staging.query_frame(
            conn, "SELECT :text AS key, 7 AS id", schema={"key": pl.String, "id": pl.Int64}, text="50%% a%b %"
        )
    assert frame.rows() == [("50%% a%b %", 7)]


def test_playlists_in_a_namespace_with_a_percent_sign_keep_their_entries(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "playlists.csv"
    path.write_text(
        "playlist_id,playlist_name,title,artist\n"
        "p1,Sale,Song A,Artist\np1,Sale,Song B,Artist\np2,Other,Song C,Someone\n",
        encoding="utf-8",
    )

    report = ingest_table(catalog_engine, [path], kind="playlists", namespace="50% off")

    assert report.ok, report.unreadable
    assert report.loaded["playlist_tracks"] == 3
    with catalog_engine.connect() as conn:
        found = conn.execute(
            sa.text(
                """SELECT p.namespace, p.source_key, t.title FROM playlist p
                   JOIN playlist_track pt ON pt.playlist_id = p.id JOIN track t ON t.id = pt.track_id
                   ORDER BY p.source_key, pt.position"""
            )
        ).all()
    assert [tuple(r) for r in found] == [
        ("50% off", "table:p1", "Song A"),
        ("50% off", "table:p1", "Song B"),
        ("50% off", "table:p2", "Song C"),
    ]
