"""``recsys embed music`` reads the catalog's audio a page at a time: memory does not grow with the catalog.

A catalog of 120 tracks with audio (every file missing, so that nothing needs a trained
model or real audio) is embedded in batches of 4 while the catalog is read in pages of
10 tracks: at every batch, at most about a page of pending tracks is held. Reading every
asset at once held all 120 from the start.
"""

from __future__ import annotations

import gc

import pytest
import sqlalchemy as sa

from pipelines.embed import music as job
from pipelines.embed.audio import Pending
from recsys.models.trimodal import TrimodalConfig, TrimodalModel
from recsys.models.trimodal_bundle import Bundle, FeatureSpec
from recsys.vectorstore.client import ClientStore

TRACKS = 120


def catalog_with_audio(engine: sa.Engine, n: int) -> list[int]:
    with engine.begin() as conn:
        artist = conn.execute(
            sa.text("INSERT INTO artist (source_key, name, name_key) VALUES ('a', 'A', 'a') RETURNING id")
        ).scalar_one()
        ids = []
        for i in range(n):
            track = conn.execute(
                sa.text(
                    """INSERT INTO track (source_key, title, title_key, artist_id, artist_name, recording_key)
                       VALUES (:k, :t, :t, :a, 'A', :k) RETURNING id"""
                ),
                {"k": f"t{i}", "t": f"T {i}", "a": artist},
            ).scalar_one()
            for copy in range(1 + i % 2):  # some tracks have two files: the first one counts
                conn.execute(
                    sa.text(
                        """INSERT INTO audio_asset (track_id, uri, checksum, size_bytes)
                           VALUES (:t, :u, :c, 1)"""
                    ),
                    {"t": track, "u": f"/nonexistent/{i}-{copy}.wav", "c": f"{i:064d}"},
                )
            ids.append(int(track))
    return ids


def test_pending_tracks_are_read_a_page_at_a_time(
    sqlite_engine: sa.Engine, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = catalog_with_audio(sqlite_engine, TRACKS)
    monkeypatch.setattr(job, "PAGE_ROWS", 10, raising=False)
    config = TrimodalConfig(
        video_dim=4, text_dim=4, music_dim=4, d_model=8, heads=2, layers=1, ff_dim=8, embed_dim=8
    )
    bundle = Bundle(TrimodalModel(config).eval(), FeatureSpec(), "0123456789abcdef")
    held: list[int] = []

    def count_pending(number: int) -> None:
        # type(), not isinstance(): a weak proxy whose object is gone raises on isinstance
        held.append(sum(type(o) is Pending for o in gc.get_objects()))

    report = job.embed_music(
        sqlite_engine,
        bundle,
        tmp_path / "model.pt",
        ClientStore(":memory:"),
        batch_size=4,
        on_batch=count_pending,  # type: ignore[operator]
    )

    assert report.embedded == 0 and report.unchanged == 0
    assert report.failed == [
        f"track {t} (/nonexistent/{i}-0.wav): file is missing" for i, t in enumerate(ids)
    ]
    assert len(held) == TRACKS // 4
    assert max(held) <= 10 + 4, held  # a page and a batch, never the catalog
