"""Every other recorded Web API answer that holds tracks, albums, artists or playlists goes through spotipy
over real HTTP and into the catalog, with the counts planted by hand from the files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from pipelines.ingest.spotify import ingest_document
from pipelines.ingest.spotify_client import RetryPolicy, SpotifyApi
from recsys.catalog.schema import Album, Artist, Track
from tests.ingest.spotify_replay import Replay

pytestmark = [pytest.mark.shared_data, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TRACK = "1zHlj4dQ8ZAtrayhuDDmkY"
PITBULL = "0TnOYISbd1XYRBk9myaseg"
EPISODE = "2DSKnz9Hqm1tKimcXqcMJD"
LISTED = "playlist listed without its items"  # (ingest it with --playlist)
EPISODE_REASON = "podcast episode, not a track"

# file, path served, the spotipy call, distinct tracks, rejects by kind.
# Fewer tracks than "spotify:track:" URIs in a file: the extra URIs are the originals in "linked_from".
ANSWERS: list[tuple[str, str, Callable[[Any], Any], int, dict[str, int]]] = [
    ("current_users_albums.txt", "me/albums", lambda sp: sp.current_user_saved_albums(), 33, {}),
    ("current_users_top_artists.txt", "me/top/artists", lambda sp: sp.current_user_top_artists(), 0, {}),
    ("current_users_top_tracks.txt", "me/top/tracks", lambda sp: sp.current_user_top_tracks(), 19, {}),
    (
        "featured_playlists.txt",
        "browse/featured-playlists",
        lambda sp: sp.featured_playlists(),
        0,
        {LISTED: 5},
    ),
    ("current_users_playlists.txt", "me/playlists", lambda sp: sp.current_user_playlists(), 0, {LISTED: 5}),
    (
        "playlists_for_user.txt",
        "users/whizler/playlists",
        lambda sp: sp.user_playlists("whizler"),
        0,
        {LISTED: 7},
    ),
    (
        "find_albums.txt",
        "albums/",
        lambda sp: sp.albums(["41MnTivkwTO3UUJ8DrqEJJ", "6JWc4iAiJ9FjyK0B59ABb4", "6UXCm6bOO4gFlDQZV5yL37"]),
        76,
        {},
    ),
    ("find_track_with_floats.txt", f"tracks/{TRACK}", lambda sp: sp.track(TRACK), 1, {}),
    (
        "find_tracks_notfound.txt",
        "tracks/",
        lambda sp: sp.tracks([TRACK, "0000000000000000000000"]),
        1,
        {"null item": 1},
    ),
    ("find_tracks_simple.txt", "tracks/", lambda sp: sp.tracks([TRACK, "0000000000000000000000"]), 2, {}),
    ("new_releases.txt", "browse/new-releases", lambda sp: sp.new_releases(), 0, {}),
    ("player_currently_playing.txt", "me/player/currently-playing", lambda sp: sp.currently_playing(), 1, {}),
    (
        "player_recently_played.txt",
        "me/player/recently-played",
        lambda sp: sp.current_user_recently_played(),
        17,
        {},
    ),
    ("player_state.txt", "me/player", lambda sp: sp.current_playback(), 1, {}),
    ("get_queue.txt", "me/player/queue", lambda sp: sp.queue(), 21, {}),
    ("recommendations.txt", "recommendations", lambda sp: sp.recommendations(seed_artists=[PITBULL]), 10, {}),
    (
        "related_artists.txt",
        f"artists/{PITBULL}/related-artists",
        lambda sp: sp.artist_related_artists(PITBULL),
        0,
        {},
    ),
    (
        "related_artists_with_floats.txt",
        f"artists/{PITBULL}/related-artists",
        lambda sp: sp.artist_related_artists(PITBULL),
        0,
        {},
    ),
    ("search_artist.txt", "search", lambda sp: sp.search("tania bowra", type="artist"), 0, {}),
    ("search_tracks.txt", "search", lambda sp: sp.search("uptown", limit=2), 2, {}),
    (
        "search_trackplaylist.txt",
        "search",
        lambda sp: sp.search("holiday", limit=2, type="track,playlist"),
        2,
        {LISTED: 2},
    ),
    ("get_episode.txt", f"episodes/{EPISODE}", lambda sp: sp.episode(EPISODE), 0, {EPISODE_REASON: 1}),
]


@pytest.fixture
def replay(httpserver: HTTPServer, shared_data: Path) -> Replay:
    return Replay(httpserver, shared_data / "spotify_api" / "responses")


def test_every_recorded_answer_through_spotipy(catalog_engine: sa.Engine, replay: Replay) -> None:
    api = SpotifyApi(replay.settings(), RetryPolicy(backoff_s=0))
    for name, path, call, tracks, reasons in ANSWERS:
        replay.server.clear_all_handlers()
        replay.serve(path, name)
        document = api.get(name, call, api.sp)
        report = ingest_document(catalog_engine, f"replay:{name}", document)
        assert report.loaded.get("tracks", 0) == tracks, (name, report.summary())
        assert dict(report.reasons) == reasons, (name, report.summary())
        assert [r.split(" ")[0] for r in replay.requests[-1:]] == ["GET"], name

    with catalog_engine.connect() as conn:
        genres = dict(
            conn.execute(sa.select(Artist.name, Artist.genres).where(Artist.genres.is_not(None))).all()
        )
        new_albums = conn.execute(sa.select(sa.func.count()).select_from(Album)).scalar()
        floats = conn.execute(
            sa.select(Track.duration_ms).where(Track.spotify_uri == f"spotify:track:{TRACK}")
        ).scalar()
    top = replay.doc("current_users_top_artists.txt")["items"][0]
    assert genres[top["name"]] == top["genres"]
    related = [a for a in replay.doc("related_artists.txt")["artists"] if a["genres"]]
    assert all(a["name"] in genres for a in related) and len(related) == 16
    assert new_albums >= 20  # the 20 new releases (albums without tracks) are album rows too
    assert floats == replay.doc("find_track_with_floats.txt")["duration_ms"]
