"""Pure mapping of Web API objects to catalog rows, on planted objects (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from pipelines.ingest.spotify import canonical_checksum, ingest_document
from pipelines.ingest.spotify_map import Collected, catalog_chunk, parse_id, release_year, track_problem
from recsys.catalog.batches import RejectLog
from recsys.errors import InputError

BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def sid(n: int) -> str:
    return f"{n:022d}"


def artist(n: int, name: str) -> dict[str, Any]:
    return {"type": "artist", "name": name, "uri": f"spotify:artist:{sid(n)}", "id": sid(n)}


def track(n: int, name: str, artists: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    album = {
        "type": "album",
        "name": "Planted Album",
        "uri": f"spotify:album:{sid(900)}",
        "album_type": "compilation",
        "release_date": "1981-12",
        "artists": [artist(800, "Various Artists")],
    }
    return {
        "type": "track",
        "name": name,
        "uri": f"spotify:track:{sid(n)}",
        "artists": artists,
        "album": album,
        "duration_ms": 181_000,
        "external_ids": {"isrc": "gb-aaa-81-00001"},
    } | extra


@given(st.text(alphabet=BASE62, min_size=22, max_size=22))
def test_parse_id_accepts_ids_uris_and_urls(value: str) -> None:
    for form in (
        value,
        f"spotify:playlist:{value}",
        f"spotify:user:someone:playlist:{value}",
        f"https://open.spotify.com/playlist/{value}",
        f"https://open.spotify.com/intl-de/playlist/{value}?si=1f2e",
        f"  open.spotify.com/playlist/{value}/ ",
    ):
        assert parse_id("playlist", form) == value


@pytest.mark.parametrize("bad", ["", "spotify:album:abc", "https://open.spotify.com/album/abc", "a b", "x/y"])
def test_parse_id_rejects_other_kinds_and_junk(bad: str) -> None:
    with pytest.raises(InputError, match="not a Spotify playlist id"):
        parse_id("playlist", bad)


def test_release_year_and_track_problems() -> None:
    assert [release_year({"release_date": d}) for d in ("1981-12-01", "1981", "0000", None, "late")] == [
        1981,
        1981,
        None,
        None,
        None,
    ]
    ok = track(1, "Song", [artist(1, "A")])
    assert track_problem(ok) is None
    assert track_problem(None) == "null track (removed from Spotify or unavailable)"
    assert track_problem({"type": "episode", "uri": "spotify:episode:x"}).startswith("podcast episode")
    assert track_problem(ok | {"is_local": True}).startswith("local file")
    assert track_problem(ok | {"uri": "spotify:local:A:B:Song:181"}).startswith("local file")
    assert track_problem(ok | {"uri": "spotify:track:short"}) == "invalid uri: 'spotify:track:short'"
    assert track_problem({k: v for k, v in ok.items() if k != "uri"}) == "missing field: uri"
    assert track_problem(ok | {"name": "  "}) == "missing field: name"
    assert track_problem(ok | {"artists": [{"name": ""}]}).startswith("missing field: artists")


def test_playlist_items_old_and_new_shapes_rejects_and_positions() -> None:
    a, b = artist(1, "A"), artist(2, "B")
    items = [
        {"item": track(1, "One", [a]), "is_local": False},  # 2026 shape: "item"
        {"track": track(2, "Two", [b]), "added_at": "2020-01-01T00:00:00Z"},  # older shape: "track"
        {"track": None},
        {"track": track(3, "Local", [a]), "is_local": True},
        {"item": {"type": "episode", "uri": "spotify:episode:e1", "name": "Ep"}},
        {"item": track(1, "One", [a])},  # the same track twice: both entries are kept
    ]
    meta = {"id": "p1", "name": "Mixed", "description": "Rock &amp; roll &#x27;81", "followers": {"total": 7}}
    collected, log = Collected(), RejectLog("spotify")
    assert collected.playlist(meta, items, "spotify:playlist:p1", log)
    assert collected.entries["position"] == [0, 1, 5]
    assert collected.entries["track_key"] == [
        f"spotify:track:{sid(1)}",
        f"spotify:track:{sid(2)}",
        f"spotify:track:{sid(1)}",
    ]
    assert [r["location"] for r in log.rows] == [f"spotify:playlist:p1.items[{i}]" for i in (2, 3, 4)]
    assert [r["reason"].split(" (")[0] for r in log.rows] == [
        "null track",
        "local file, not in the Spotify catalog",
        "podcast episode, not a track",
    ]
    assert collected.playlists["description"] == ["Rock & roll '81"]
    assert collected.playlists["num_followers"] == [7] and collected.playlists["num_tracks"] == [3]


def test_exact_credits_beat_credit_string_parsing() -> None:
    # A name with a comma and one with "&": credit-string splitting would break both apart.
    credited = [
        artist(1, "Earth, Wind & Fire"),
        artist(2, "Tyler, The Creator"),
        artist(3, "Ms. Lauryn Hill"),
    ]
    collected, log = Collected(), RejectLog("spotify")
    collected.document({"tracks": [track(10, "Planted (feat. Nobody)", credited)]}, "doc", log)
    chunk = catalog_chunk(collected, log, batch_id=None)

    assert chunk.tracks["artist_name"].to_list() == [
        "Earth, Wind & Fire feat. Tyler, The Creator, Ms. Lauryn Hill"
    ]
    assert chunk.tracks["artist_key"].to_list() == ["name:earth wind and fire"]
    assert chunk.tracks["isrc"].to_list() == ["GBAAA8100001"]
    assert chunk.tracks["year"].to_list() == [1981]
    credits = chunk.track_artists.sort("position").rows()
    assert credits == [
        (f"spotify:track:{sid(10)}", 0, "name:earth wind and fire", "primary"),
        (f"spotify:track:{sid(10)}", 1, "name:tyler the creator", "featured"),
        (f"spotify:track:{sid(10)}", 2, "name:ms lauryn hill", "featured"),
    ]
    uris = dict(zip(chunk.artists["name"], chunk.artists["spotify_uri"], strict=True))
    assert uris == {
        "Earth, Wind & Fire": f"spotify:artist:{sid(1)}",
        "Tyler, The Creator": f"spotify:artist:{sid(2)}",
        "Ms. Lauryn Hill": f"spotify:artist:{sid(3)}",
        "Various Artists": f"spotify:artist:{sid(800)}",
    }
    assert chunk.albums.select("source_key", "artist_key", "release_year", "album_type").rows() == [
        (f"spotify:album:{sid(900)}", "name:various artists", 1981, "compilation")
    ]


def test_document_lands_with_credits_and_reruns_change_nothing(sqlite_engine: sa.Engine) -> None:
    a, b = artist(1, "A"), artist(2, "B")
    document = {
        "type": "playlist",
        "id": "p9",
        "name": "Planted",
        "items": {"items": [{"item": track(1, "One", [a, b]), "added_at": None}]},
    }
    first = ingest_document(sqlite_engine, "spotify:playlist:p9", document)
    assert first.loaded == {"playlists": 1, "playlist_tracks": 1, "tracks": 1}
    with sqlite_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT a.name, a.spotify_uri, ta.role FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                   ORDER BY ta.position"""
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("A", f"spotify:artist:{sid(1)}", "primary"),
        ("B", f"spotify:artist:{sid(2)}", "featured"),
    ]
    again = ingest_document(sqlite_engine, "spotify:playlist:p9", document)
    assert again.skipped == 1 and not again.loaded
    assert canonical_checksum({"b": 1, "a": [1.5]}) == canonical_checksum({"a": [1.5], "b": 1})
