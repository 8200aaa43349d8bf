"""The MPD loader's fast path (ids from the load's memory) writes exactly what the general merge writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.ingest import mpd
from recsys.catalog import bulk, db
from tests.ingest.test_crash import DUMP, write_corpus


def general_merge(
    conn: sa.Connection, chunk: bulk.CatalogChunk, *, namespace: str, **_: Any
) -> dict[str, int]:
    """The merge every other source uses: artist, album and track ids resolved by joins in the database."""
    return bulk.merge_chunk(conn, chunk, namespace=namespace)


def load(url: str, folder: Path, monkeypatch: pytest.MonkeyPatch, general: bool) -> dict[str, list[Any]]:
    with monkeypatch.context() as patch:
        if general:
            patch.setattr(mpd, "merge_chunk", general_merge)
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            files = sorted(folder.glob("*.json"))
            # Two loads, the second over everything: tracks met again in a later load are looked up,
            # within one load they come from its memory; small chunks make many of both.
            assert mpd.ingest_mpd(engine, files[::3], batch_rows=1_500).ok
            assert mpd.ingest_mpd(engine, files, batch_rows=1_500).ok
            with engine.connect() as conn:
                return {
                    t: sorted((tuple(r) for r in conn.execute(sa.text(q))), key=repr)
                    for t, q in DUMP.items()
                    if t != "ingest_batch"
                }
        finally:
            engine.dispose()


def test_fast_path_writes_what_the_general_merge_writes(
    catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "slices")  # full and trimmed slices: tracks gain albums, durations, artist URIs
    for path in sorted((tmp_path / "slices").glob("*.json"))[:10]:
        # Artists first met without their URI gain it later in the same load.
        document = json.loads(path.read_text())
        for playlist in document["playlists"]:
            for entry in playlist["tracks"]:
                entry.pop("artist_uri", None)
        path.write_text(json.dumps(document))
    fast = load(catalog_url, tmp_path / "slices", monkeypatch, general=False)
    general = load(f"sqlite:///{tmp_path / 'general.db'}", tmp_path / "slices", monkeypatch, general=True)
    assert fast["track"] and fast["album"] and fast["track_artist"]
    for table in fast:
        assert fast[table] == general[table], table
