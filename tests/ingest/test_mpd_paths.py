"""The MPD loader's fast path (ids from the load's memory) writes exactly what the general merge writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from pipelines.ingest import mpd
from recsys.catalog import db, frames, load_memory, merges
from tests.ingest.test_crash import dump, uri, write_corpus


def general_merge(
    conn: sa.Connection, chunk: frames.CatalogChunk, **_: Any
) -> tuple[dict[str, int], pl.DataFrame | None]:
    """The merge every other source uses: artist, album and track ids resolved by joins in the database."""
    return merges.merge_dimensions(conn, chunk)


def blind_prime(memory: load_memory.KnownTracks, conn: sa.Connection) -> None:
    """Take the memory for complete without reading the catalog, as when another process writes
    tracks after the load read it: every track already there is then met as an unknown one."""
    memory.primed = True


def load(
    url: str, folder: Path, monkeypatch: pytest.MonkeyPatch, general: bool, blind: bool = False
) -> dict[str, list[Any]]:
    with monkeypatch.context() as patch:
        if general:
            patch.setattr(mpd, "merge_dimensions", general_merge)
        if blind:
            patch.setattr(load_memory.KnownTracks, "prime", blind_prime)
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            files = sorted(folder.glob("*.json"))
            # Two loads, the second over everything: tracks met again in a later load are looked up,
            # within one load they come from its memory; small chunks make many of both.
            assert mpd.ingest_mpd(engine, files[:1], batch_rows=1_500).ok
            assert mpd.ingest_mpd(engine, files, batch_rows=1_500).ok
            return dump(engine, skip=("ingest_batch",))
        finally:
            engine.dispose()


@pytest.mark.parametrize("blind", [False, True], ids=["primed", "blind"])
def test_fast_path_writes_what_the_general_merge_writes(
    catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blind: bool
) -> None:
    write_corpus(tmp_path / "slices")  # full and trimmed slices: tracks gain albums, durations, artist URIs
    for path in sorted((tmp_path / "slices").glob("*.json"))[:10]:
        # Tracks and artists first met without album, duration or URI gain them later in the same load.
        document = json.loads(path.read_text())
        for playlist in document["playlists"]:
            for entry in playlist["tracks"]:
                for field in ("artist_uri", "album_uri", "album_name", "duration_ms"):
                    entry.pop(field, None)
        path.write_text(json.dumps(document))
    for group, gained in enumerate(("album", "duration", "artist_uri")):
        # New tracks met bare in one chunk and, in the next, with one value more.
        for step in (0, 1):
            tracks = []
            for n in range(60):
                number = 900_000 + 1_000 * group + n
                late: dict[str, Any] = {
                    "track_uri": uri("track", number),
                    "track_name": f"Late {group} {n}",
                    "artist_name": f"Late Artist {group} {n % 7}",
                }
                if step and gained == "album":
                    late |= {"album_uri": uri("album", number % 9), "album_name": f"Late Album {n % 9}"}
                elif step and gained == "duration":
                    late["duration_ms"] = 200_000 + n
                elif step:
                    late["artist_uri"] = uri("artist", 900_000 + 1_000 * group + n % 7)
                tracks.append(late)
            playlists = [
                {"name": gained, "pid": 90_000 + 100 * group + 10 * i + step, "tracks": tracks}
                for i in range(30)
            ]
            (tmp_path / "slices" / f"mpd.slice.9{group}{step}.json").write_text(
                json.dumps({"info": {}, "playlists": playlists})
            )
    fast = load(catalog_url, tmp_path / "slices", monkeypatch, general=False, blind=blind)
    general = load(f"sqlite:///{tmp_path / 'general.db'}", tmp_path / "slices", monkeypatch, general=True)
    assert fast["track"] and fast["album"] and fast["track_artist"]
    for table in fast:
        assert fast[table] == general[table], table
