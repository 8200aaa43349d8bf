"""The real trimmed MPD sample lands whole, once, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog.queries import catalog_stats

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def read_sample(folder: Path) -> tuple[int, int, int, int, dict[str, list[str]]]:
    """(playlists, entries, distinct track URIs, entries repeating a track, some playlists' URIs in order)."""
    uris: set[str] = set()
    playlists = entries = repeats = 0
    picked: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        for playlist in orjson.loads(path.read_bytes())["playlists"]:
            ordered = [t["track_uri"] for t in playlist["tracks"]]
            playlists += 1
            entries += len(ordered)
            uris.update(ordered)
            repeated = len(ordered) - len(set(ordered))
            repeats += repeated
            # Every playlist with repeats in the first files, and the first playlist of each file.
            if (repeated and len(picked) < 12) or path.name not in {k.split("#")[0] for k in picked}:
                picked[f"{path.name}#mpd:{playlist['pid']}"] = ordered
    return playlists, entries, len(uris), repeats, picked


def stored_orders(conn: sa.Connection) -> dict[str, list[str]]:
    """Every playlist's track URIs in position order (positions checked to be 0..n-1)."""
    rows = conn.execute(
        sa.text(
            """SELECT p.source_key, t.source_key, pt.position FROM playlist_track pt
               JOIN playlist p ON p.id = pt.playlist_id JOIN track t ON t.id = pt.track_id
               ORDER BY p.source_key, pt.position"""
        )
    )
    out: dict[str, list[str]] = {}
    for key, uri, position in rows:
        entries = out.setdefault(key, [])
        assert position == len(entries), f"{key}: positions are not 0..n-1"
        entries.append(uri)
    return out


def test_trimmed_sample_counts_and_rerun(catalog_engine: sa.Engine, shared_data: Path) -> None:
    folder = shared_data / "mpd_trimmed"
    playlists, entries, tracks, repeats, picked = read_sample(folder)
    assert (playlists, entries, repeats) == (3_555, 345_283, 5_259)

    report = ingest_mpd(catalog_engine, [folder])
    assert report.ok and report.rejected == 0, report.summary()
    with catalog_engine.connect() as conn:
        first = catalog_stats(conn)
        stored_repeats = conn.execute(
            sa.text(
                """SELECT COUNT(*) - (SELECT COUNT(*) FROM
                       (SELECT DISTINCT playlist_id, track_id FROM playlist_track) AS d)
                   FROM playlist_track"""
            )
        ).scalar_one()
        # Entries that repeat a track are kept, in the file's order.
        assert stored_repeats == 5_259
        assert sum(len(u) != len(set(u)) for u in picked.values()) >= 10
        # Every track keeps its Spotify URI (the MPD's only track id), and it is its source key.
        assert (
            conn.execute(
                sa.text("SELECT COUNT(*) FROM track WHERE spotify_uri IS NULL OR spotify_uri <> source_key")
            ).scalar_one()
            == 0
        )
        stored = stored_orders(conn)
        for name, ordered in picked.items():
            assert stored[name.split("#")[1]] == ordered, name
    assert first["playlists"] == 3_555
    assert first["playlist_tracks"] == 345_283
    assert first["tracks"] == tracks

    again = ingest_mpd(catalog_engine, [folder])
    assert again.skipped == again.inputs == 618
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == first
