"""The real trimmed MPD sample lands whole, once, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog.queries import catalog_stats

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def distinct_uris(folder: Path) -> tuple[int, int, int]:
    uris: set[str] = set()
    playlists = entries = 0
    for path in folder.glob("*.json"):
        for playlist in orjson.loads(path.read_bytes())["playlists"]:
            playlists += 1
            entries += len(playlist["tracks"])
            uris.update(t["track_uri"] for t in playlist["tracks"])
    return playlists, entries, len(uris)


def test_trimmed_sample_counts_and_rerun(catalog_engine: sa.Engine, shared_data: Path) -> None:
    folder = shared_data / "mpd_trimmed"
    playlists, entries, tracks = distinct_uris(folder)
    assert (playlists, entries) == (3_555, 345_283)

    report = ingest_mpd(catalog_engine, [folder])
    assert report.ok and report.rejected == 0, report.summary()
    with catalog_engine.connect() as conn:
        first = catalog_stats(conn)
    assert first["playlists"] == 3_555
    assert first["playlist_tracks"] == 345_283
    assert first["tracks"] == tracks

    again = ingest_mpd(catalog_engine, [folder])
    assert again.skipped == again.inputs == 618
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == first
