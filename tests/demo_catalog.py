"""The small demo data dir the UI and API tests share (``demo_dir`` in ``tests/conftest.py``): what
``recsys demo`` builds at small sizes, plus a playlist and a track whose names are markup."""

from __future__ import annotations

import json
from pathlib import Path

SMALL_DEMO = ["--playlists", "300", "--audio-clips", "1", "--video-clips", "40", "--video-epochs", "2"]

HOSTILE_TRACK = "**bold** <script>alert(1)</script>"
HOSTILE_PLAYLIST = "<b>loud</b> $x$ [link](http://example.com)"


def plant_hostile_names(data_dir: Path) -> None:
    """One more MPD slice: a playlist and a track whose names are markup, to be shown as text."""
    from pipelines.ingest.mpd import ingest_mpd
    from recsys.catalog import db

    tracks = [
        {
            "pos": 0,
            "artist_name": "<i>Nobody</i>",
            "track_name": HOSTILE_TRACK,
            "track_uri": "spotify:track:" + "h" * 22,
        },
        {
            "pos": 1,
            "artist_name": "Plain Artist",
            "track_name": "Plain Song",
            "track_uri": "spotify:track:" + "p" * 22,
        },
    ]
    slice_ = {
        "info": {},
        "playlists": [{"name": HOSTILE_PLAYLIST, "pid": 999_999, "num_tracks": 2, "tracks": tracks}],
    }
    path = data_dir / "hostile" / "mpd.slice.999999-999999.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(slice_))
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    ingest_mpd(engine, [path])
    engine.dispose()
