"""`recsys ingest spotify` end to end: real recorded Web API answers replayed over real HTTP, through spotipy,
into SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from pipelines.ingest.spotify import SpotifyInputs, ingest_spotify
from pipelines.ingest.spotify_client import RetryPolicy, SpotifyApi
from recsys.catalog.queries import catalog_stats
from recsys.catalog.schema import Artist
from tests.ingest.spotify_replay import FORBIDDEN, Replay

pytestmark = pytest.mark.shared_data

RAP_RU = "1h9q8vXXDl2vHOmwdsuXms"  # get_playlist.txt
TOP_40 = "5lH9NjOeJvctAO92ZrKQNB"  # get_playlist_opt.txt, playlist_tracks.txt
MIXED = "23Ay9WfURne0LvtlCvYTkj"  # playlist_items_*.json
ALBUM = "0sNOF9WDwhWunNAHPD3Baj"  # find_album.txt, find_album_tracks.txt
TRACK = "1zHlj4dQ8ZAtrayhuDDmkY"  # find_track.txt
PITBULL = "0TnOYISbd1XYRBk9myaseg"  # find_artist.txt


@pytest.fixture
def replay(httpserver: HTTPServer, shared_data: Path) -> Replay:
    return Replay(httpserver, shared_data / "spotify_api" / "responses")


def run(engine: sa.Engine, replay: Replay, **inputs: Any) -> Any:
    api = SpotifyApi(replay.settings(), RetryPolicy(backoff_s=0))
    return ingest_spotify(engine, api, SpotifyInputs(**inputs))


def entries(engine: sa.Engine, playlist_key: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (row.position, row.spotify_uri)
            for row in conn.execute(
                sa.text(
                    """SELECT pt.position, t.spotify_uri FROM playlist_track pt
                       JOIN playlist p ON p.id = pt.playlist_id JOIN track t ON t.id = pt.track_id
                       WHERE p.source_key = :k ORDER BY pt.position"""
                ),
                {"k": playlist_key},
            )
        ]


def item_uris(page: dict[str, Any]) -> list[str]:
    return [item["track"]["uri"] for item in page["items"]]


def test_playlist_by_url_pages_and_rerun(catalog_engine: sa.Engine, replay: Replay) -> None:
    playlist = replay.doc("get_playlist.txt")
    page = playlist["tracks"]
    # The recorded playlist embeds its 4 items; serve 2 embedded and the rest as a second page.
    replay.serve(
        f"playlists/{RAP_RU}", playlist | {"tracks": replay.first_page(f"playlists/{RAP_RU}/items", page, 2)}
    )
    replay.paged(f"playlists/{RAP_RU}/items", page, 2)
    replay.refuse_everything_else()

    report = run(catalog_engine, replay, playlists=[f"https://open.spotify.com/playlist/{RAP_RU}?si=abc"])
    assert report.ok and report.rejected == 0, report.summary()
    assert report.loaded == {"playlists": 1, "playlist_tracks": 4, "tracks": 4}
    assert any("offset=2" in r for r in replay.requests), replay.requests
    assert entries(catalog_engine, f"spotify:playlist:{RAP_RU}") == list(enumerate(item_uris(page)))

    first_track = page["items"][0]["track"]
    with catalog_engine.connect() as conn:
        pl_row = conn.execute(
            sa.text("SELECT name, description, owner, num_followers, collaborative, num_tracks FROM playlist")
        ).one()
        track = conn.execute(
            sa.text(
                """SELECT t.isrc, t.title, t.duration_ms, t.year, a.spotify_uri AS artist_uri, al.spotify_uri AS album_uri
                   FROM track t JOIN artist a ON a.id = t.artist_id JOIN album al ON al.id = t.album_id
                   WHERE t.source_key = :k"""
            ),
            {"k": first_track["uri"]},
        ).one()
        stats = catalog_stats(conn)
    assert tuple(pl_row) == (
        "Rap RU",
        "Bit of a overlap with phonk but whatever",
        "Antoine Egea",
        0,
        False,
        4,
    )
    assert track.isrc == first_track["external_ids"]["isrc"]
    assert track.title == first_track["name"]
    assert track.duration_ms == first_track["duration_ms"]
    assert track.year == int(first_track["album"]["release_date"][:4])
    assert track.artist_uri == first_track["artists"][0]["uri"]
    assert track.album_uri == first_track["album"]["uri"]

    again = run(catalog_engine, replay, playlists=[f"spotify:playlist:{RAP_RU}"])
    assert again.skipped == again.inputs == 1
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == stats


def test_mine_pages_listing_and_items_reports_403_404_per_playlist(
    catalog_engine: sa.Engine, replay: Replay
) -> None:
    listing = replay.doc("current_users_playlists.txt")  # page 1 of the user's playlists
    more = replay.doc("playlists_for_user.txt")  # served as page 2 (it lists the Top 40)
    replay.serve("me/playlists", listing | {"next": f"{replay.base}me/playlists?offset=5&limit=5"})
    # Page 2 is served at the same path: the handler above answers page 1 only when no offset is asked.
    replay.server.clear_all_handlers()
    replay.handle(
        "me/playlists",
        lambda request: _json(
            more | {"next": None}
            if request.args.get("offset") == "5"
            else listing | {"next": f"{replay.base}me/playlists?offset=5&limit=5"}
        ),
    )
    top40 = replay.doc("playlist_tracks.txt")
    replay.paged(f"playlists/{TOP_40}/items", top40, 25)
    owned_by_spotify = [p["id"] for p in more["items"] if p["owner"]["id"] == "spotify"]
    for pid in owned_by_spotify:
        replay.serve(f"playlists/{pid}/items", FORBIDDEN, status=403)
    replay.refuse_everything_else()

    report = run(catalog_engine, replay, mine=True)
    ids = [p["id"] for p in listing["items"] + more["items"]]
    assert report.inputs == len(ids) == 12
    assert report.loaded == {"playlists": 1, "playlist_tracks": 40, "tracks": 40}
    assert entries(catalog_engine, f"spotify:playlist:{TOP_40}") == list(enumerate(item_uris(top40)))
    # One clear line per refused playlist, naming it and the status; the rest went on.
    assert len(report.messages) == len(ids) - 1
    for pid in ids:
        lines = [m for m in report.messages if f"playlist {pid}:" in m]
        assert len(lines) == (0 if pid == TOP_40 else 1), (pid, report.messages)
        if pid in owned_by_spotify:
            assert "HTTP 403" in lines[0] and "owns nor collaborates" in lines[0]
    with catalog_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM ingest_reject WHERE reason LIKE 'HTTP 40%'")
        ).scalar()
    assert stored == len(ids) - 1
    # /items answered 404, so the old /tracks path was tried before giving up.
    assert any(r.startswith(f"GET /v1/playlists/{ids[0]}/tracks") for r in _all_requests(replay))


def test_fields_filtered_playlist_answer_fetches_items(sqlite_engine: sa.Engine, replay: Replay) -> None:
    replay.serve(f"playlists/{TOP_40}", "get_playlist_opt.txt")  # items without uri or artists
    replay.paged(f"playlists/{TOP_40}/items", replay.doc("playlist_tracks.txt"), 40)
    replay.refuse_everything_else()
    report = run(sqlite_engine, replay, playlists=[TOP_40])
    assert report.loaded["playlist_tracks"] == 40 and report.rejected == 0, report.summary()
    with sqlite_engine.connect() as conn:
        assert tuple(conn.execute(sa.text("SELECT name, owner FROM playlist")).one()) == (
            "Top 40",
            "Nederlandse Top 40",
        )


def test_episodes_are_rejected_with_reason_tracks_kept(catalog_engine: sa.Engine, replay: Replay) -> None:
    files = {
        MIXED: "playlist_items_episodes_and_tracks.json",
        "0000000000000000000001": "playlist_items_episodes.json",
        "0000000000000000000002": "playlist_items_tracks.json",
    }
    for pid, name in files.items():
        replay.serve(
            f"playlists/{pid}", {"id": pid, "type": "playlist", "name": f"mix {pid[-1]}", "owner": {}}
        )
        replay.paged(f"playlists/{pid}/items", replay.doc(name), 50)
    replay.refuse_everything_else()

    report = run(catalog_engine, replay, playlists=list(files))
    assert report.ok
    assert report.loaded == {"playlists": 2, "playlist_tracks": 4, "tracks": 4}
    assert report.reasons == {"podcast episode, not a track": 6, "empty playlist: every item was rejected": 1}
    mixed = replay.doc(files[MIXED])
    kept = [(i, it["track"]["uri"]) for i, it in enumerate(mixed["items"]) if it["track"]["type"] == "track"]
    assert entries(catalog_engine, f"spotify:playlist:{MIXED}") == kept
    with catalog_engine.connect() as conn:
        reasons = conn.execute(sa.text("SELECT location, reason FROM ingest_reject ORDER BY location")).all()
    assert any(
        loc.startswith("spotify:playlist:0000000000000000000001")
        and r == "empty playlist: every item was rejected"
        for loc, r in reasons
    )


def test_album_pages_and_trailing_garbage(catalog_engine: sa.Engine, replay: Replay) -> None:
    album = replay.doc("find_album.txt")  # the first JSON object of the file
    first = replay.doc("find_album_tracks.txt")  # its first page of 1 track, next → offset=1
    assert first["items"][0]["id"] == album["tracks"]["items"][0]["id"]
    replay.serve(f"albums/{ALBUM}", album | {"tracks": first})
    replay.paged(f"albums/{ALBUM}/tracks", album["tracks"], 12)  # offset=1 → the other 12
    replay.serve(f"tracks/{TRACK}", "find_track.txt")
    replay.refuse_everything_else()

    report = run(catalog_engine, replay, albums=[f"spotify:album:{ALBUM}"])
    assert report.ok and report.loaded == {"tracks": 13}, report.summary()
    with catalog_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT t.spotify_uri, al.title, al.release_year, al.album_type FROM track t
                   JOIN album al ON al.id = t.album_id WHERE al.spotify_uri = :u"""
            ),
            {"u": album["uri"]},
        ).all()
    assert sorted(r.spotify_uri for r in rows) == sorted(t["uri"] for t in album["tracks"]["items"])
    assert {(r.title, r.release_year, r.album_type) for r in rows} == {
        (album["name"], int(album["release_date"][:4]), album["album_type"])
    }

    # The recorded file itself: valid JSON followed by garbage. One clear reject; the track beside it lands.
    replay.server.clear_all_handlers()
    replay.serve(f"albums/{ALBUM}", "find_album.txt")
    replay.serve(f"tracks/{TRACK}", "find_track.txt")
    replay.refuse_everything_else()
    with catalog_engine.begin() as conn:  # forget the album's batch so the album is fetched and judged again
        conn.execute(sa.text("DELETE FROM ingest_batch WHERE location = :l"), {"l": f"spotify:album:{ALBUM}"})
    report = run(catalog_engine, replay, albums=[ALBUM], tracks=[TRACK])
    # (the character offset moves with the rewritten links; the line and column do not)
    assert len(report.unreadable) == 1
    assert report.unreadable[0].startswith(
        f"album {ALBUM}: invalid JSON in the answer (Extra data: line 380 column 2 (char "
    )
    assert report.loaded == {"tracks": 1}
    with catalog_engine.connect() as conn:
        reject = conn.execute(
            sa.text("SELECT location, reason, raw FROM ingest_reject WHERE source = 'spotify'")
        ).one()
    assert reject.location == f"spotify:album:{ALBUM}"
    assert reject.reason.startswith("invalid JSON in the answer (Extra data")
    assert reject.raw.startswith("{")


def test_artist_with_top_tracks_then_a_closed_top_tracks_endpoint(
    sqlite_engine: sa.Engine, replay: Replay
) -> None:
    other = "0000000000000000000003"
    replay.serve(f"artists/{PITBULL}", "find_artist.txt")
    replay.serve(f"artists/{PITBULL}/top-tracks", "artist_top_tracks.txt")
    replay.serve(
        f"artists/{other}",
        replay.doc("find_artist.txt")
        | {"id": other, "name": "Someone Else", "uri": f"spotify:artist:{other}", "genres": ["rebetiko"]},
    )
    replay.serve(f"artists/{other}/top-tracks", FORBIDDEN, status=403)
    replay.refuse_everything_else()
    top = replay.doc("artist_top_tracks.txt")["tracks"]

    report = run(sqlite_engine, replay, artists=[PITBULL, other])
    assert report.ok and report.loaded == {"tracks": len(top)}, report.summary()
    assert report.messages == [
        f"spotify: artist {other} top tracks: HTTP 403 Forbidden (Spotify answers 403 for endpoints closed to this app and for playlists the user neither owns nor collaborates on)"
    ]
    with sqlite_engine.connect() as conn:
        artists = dict(conn.execute(sa.select(Artist.spotify_uri, Artist.genres)).all())
    assert artists[f"spotify:artist:{other}"] == ["rebetiko"]
    assert f"spotify:artist:{PITBULL}" in artists


def test_saved_tracks_follow_next(sqlite_engine: sa.Engine, replay: Replay) -> None:
    saved = replay.doc("current_users_tracks.txt")  # 3 items and a next link to an empty page
    replay.handle(
        "me/tracks",
        lambda request: _json(
            saved
            if request.args.get("offset", "0") == "0"
            else saved | {"items": [], "next": None, "offset": 20}
        ),
    )
    replay.refuse_everything_else()
    report = run(sqlite_engine, replay, saved=True)
    assert report.loaded == {"tracks": 3}
    assert any("offset=20" in r for r in replay.requests)


def _json(body: Any) -> Any:
    import json

    from werkzeug import Response

    return Response(json.dumps(body), content_type="application/json")


def _all_requests(replay: Replay) -> list[str]:
    return [f"{req.method} {req.path}" for req, _ in replay.server.log]
