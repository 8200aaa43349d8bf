"""Browsing the catalog as people do: summaries, a page of playlists, a playlist's tracks, track search.

A planted catalog (one slice, known counts and names with accents, case and markup) is ingested
on SQLite and on PostgreSQL; every answer is checked against what was planted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog.browse import (
    models_in_use,
    playlist_lengths,
    playlist_page,
    playlist_view,
    top_artists,
    tracks_per_artist,
)
from recsys.catalog.schema import AudioAsset, ModelVersion
from recsys.catalog.track_search import audio_files, search_tracks, tracks_by_id
from recsys.errors import NotFoundError


def _track(artist: str, title: str, n: int) -> dict[str, object]:
    return {"artist_name": artist, "track_name": title, "track_uri": f"spotify:track:{n:022d}"}


BEYONCE = [_track("Beyoncé", f"Halo {i}", i) for i in range(3)]
OTHERS = [_track(f"Artist {a}", f"Song {a}-{t}", 100 + 10 * a + t) for a in range(4) for t in range(2)]


def _slice(tmp_path: Path) -> Path:
    playlists = []
    for pid in range(30):
        tracks = [BEYONCE[pid % 3], *OTHERS[: 2 + pid % 6]]
        name = "Summer Road Trip" if pid < 12 else ("Café del Mar" if pid < 20 else f"mix {pid}")
        playlists.append(
            {
                "name": name,
                "pid": pid,
                "num_tracks": len(tracks),
                "tracks": [dict(t, pos=i) for i, t in enumerate(tracks)],
            }
        )
    path = tmp_path / "mpd.slice.0-29.json"
    path.write_text(json.dumps({"info": {}, "playlists": playlists}))
    return path


@pytest.fixture
def planted(catalog_engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    ingest_mpd(catalog_engine, [_slice(tmp_path)])
    return catalog_engine


def test_summaries_count_what_was_planted(planted: sa.Engine) -> None:
    with planted.connect() as conn:
        lengths = dict(playlist_lengths(conn))
        # playlists hold 3..8 tracks, five of each length (pid % 6)
        assert lengths == {n: 5 for n in range(3, 9)}
        # Beyoncé has three tracks; artists 0-2 two each; the last track of artist 3 is never listed
        assert dict(tracks_per_artist(conn)) == {1: 1, 2: 3, 3: 1}
        # artist 0's two tracks are in every playlist; artist 1's in 25 and 20 of them; one Halo in each
        assert top_artists(conn, limit=3) == [("Artist 0", 60, 30), ("Artist 1", 45, 25), ("Beyoncé", 30, 30)]


def test_models_in_use_is_the_newest_version_of_each_kind(planted: sa.Engine) -> None:
    with planted.begin() as conn:
        conn.execute(
            sa.insert(ModelVersion),
            [
                {"kind": "als", "version": "old"},
                {"kind": "als", "version": "new"},
                {"kind": "trimodal", "version": "t1"},
                {"kind": "als-candidate", "version": "refused"},  # trained by the pipeline, never published
            ],
        )
    with planted.connect() as conn:
        models = {m.kind: m for m in models_in_use(conn)}
    assert set(models) == {"als", "trimodal"}
    assert models["als"].version == "new" and models["als"].versions == 2
    assert models["trimodal"].versions == 1


def test_playlist_pages_are_bounded_and_search_by_words(planted: sa.Engine) -> None:
    everything = playlist_page(planted, "", page_size=7)
    assert everything.total == 30 and everything.pages == 5 and len(everything.hits) == 7
    last = playlist_page(planted, "", page=99, page_size=7)
    assert last.page == 5 and len(last.hits) == 2
    assert playlist_page(planted, "ROAD summer").total == 12  # words in any order and case
    assert playlist_page(planted, "cafe").total == 0  # accents are kept, as in the catalog's keys
    cafe = playlist_page(planted, "café")
    assert cafe.total == 8 and all(h.name == "Café del Mar" for h in cafe.hits)
    assert playlist_page(planted, "100%_").total == 0  # LIKE's own characters are literal


def test_a_playlist_view_keeps_the_order_and_a_missing_one_is_named(planted: sa.Engine) -> None:
    first = playlist_page(planted, "mix 25").hits[0]
    view = playlist_view(planted, first.playlist_id)
    assert view.name == "mix 25" and view.source_key == "mpd:25"
    assert [e.title for e in view.entries] == ["Halo 1", "Song 0-0", "Song 0-1", "Song 1-0"]
    assert [e.position for e in view.entries] == [0, 1, 2, 3]
    with pytest.raises(NotFoundError, match="no playlist 999999"):
        playlist_view(planted, 999_999)


def test_track_search_finds_every_word_best_known_first(planted: sa.Engine) -> None:
    hits = search_tracks(planted, "BEYONCÉ halo")
    assert [h.title for h in hits] == ["Halo 0", "Halo 1", "Halo 2"]
    assert [h.playlists for h in hits] == [10, 10, 10]
    songs = search_tracks(planted, "song", limit=3)
    assert len(songs) == 3 and songs[0].playlists >= songs[-1].playlists
    assert search_tracks(planted, "   ") == [] and search_tracks(planted, "nothing like it") == []
    one = songs[0].track_id
    assert [h.track_id for h in search_tracks(planted, str(one))][:1] == [one]
    assert set(tracks_by_id(planted, [one, 10**9])) == {one}


def test_audio_files_are_local_files_that_exist(planted: sa.Engine, tmp_path: Path) -> None:
    present = tmp_path / "a.wav"
    present.write_bytes(b"RIFF")
    ids = [h.track_id for h in search_tracks(planted, "halo")]
    with planted.begin() as conn:
        conn.execute(
            sa.insert(AudioAsset),
            [
                {"track_id": ids[0], "uri": str(present), "checksum": "a", "size_bytes": 4},
                {"track_id": ids[1], "uri": str(tmp_path / "gone.wav"), "checksum": "b", "size_bytes": 4},
                {"track_id": ids[2], "uri": "https://example.com/x.mp3", "checksum": "c", "size_bytes": 4},
            ],
        )
    assert audio_files(planted, ids) == {ids[0]: present}
