"""Hostile Spotify answers: too large, nested too deep, ids that are not ids, values no column holds.

The answers come over real local HTTP (pytest-httpserver) through spotipy, or as
documents handed to ``ingest_document``: each bad answer costs one line and a reject
row, each bad value a reject row and a null, and the inputs beside them land, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from pipelines.ingest.guards import MAX_ID_BYTES, InputLimits
from pipelines.ingest.spotify import SpotifyInputs, ingest_document, ingest_spotify
from pipelines.ingest.spotify_map import parse_id
from recsys.errors import InputError
from tests.ingest.test_hostile_mpd import noise
from tests.ingest.test_spotify_edges import api_for
from tests.ingest.test_spotify_map import artist, sid, track


def stored_rejects(engine: sa.Engine) -> list[tuple[str, str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT location, reason, batch_id FROM ingest_reject ORDER BY location, reason")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def deep_answer(levels: int) -> bytes:
    return b'{"type": "track", "x": ' + b"[" * levels + b"]" * levels + b"}"


def test_answers_too_large_or_nested_too_deep_cost_one_line_each(
    catalog_engine: sa.Engine, httpserver: HTTPServer
) -> None:
    deep, big, bomb, good = sid(1), sid(2), sid(3), sid(4)
    httpserver.expect_request(f"/v1/tracks/{deep}").respond_with_data(
        deep_answer(100_000), content_type="application/json"
    )
    padding = json.dumps(track(2, "Big", [artist(1, "A")]) | {"pad": "x" * (2 << 20)})
    httpserver.expect_request(f"/v1/tracks/{big}").respond_with_data(padding, content_type="application/json")
    spaces = gzip.compress(b" " * (16 << 20), compresslevel=9)  # 16 MiB once expanded: a small bomb
    httpserver.expect_request(f"/v1/tracks/{bomb}").respond_with_data(
        gzip.compress(b'{"type": "track"') + spaces,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    answer = track(4, "Good", [artist(1, "A")])
    httpserver.expect_request(f"/v1/tracks/{good}").respond_with_json(answer)
    api = api_for(httpserver.url_for("").rstrip("/"), deadline_s=30, max_input_bytes=1 << 20)

    report = ingest_spotify(catalog_engine, api, SpotifyInputs(tracks=[deep, big, bomb, good]))

    size = "of more than 1,048,576 bytes (RECSYS_MAX_INPUT_BYTES)"
    assert report.unreadable == [
        f"track {deep}: answer nested more than 64 levels deep (RECSYS_MAX_JSON_DEPTH)",
        f"track {big}: answer {size}",
        f"track {bomb}: answer {size}",
    ]
    assert report.loaded["tracks"] == 1
    with catalog_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT source_key, title FROM track")).all() == [(answer["uri"], "Good")]
        raw = conn.execute(sa.text("SELECT raw FROM ingest_reject")).scalars().all()
    assert [(location, reason) for location, reason, _ in stored_rejects(catalog_engine)] == [
        (f"spotify:track:{deep}", "answer nested more than 64 levels deep (RECSYS_MAX_JSON_DEPTH)"),
        (f"spotify:track:{big}", f"answer {size}"),
        (f"spotify:track:{bomb}", f"answer {size}"),
    ]
    assert raw == [None, None, None]  # the refused answers are not kept


def playlist_document(pid: str, name: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "playlist",
        "id": pid,
        "name": name,
        "items": {"items": [{"item": t, "added_at": None} for t in items]},
    } | extra


def test_the_name_limit_reaches_spotify_and_cut_names_keep_their_batch(catalog_engine: sa.Engine) -> None:
    long, short = track(1, "Title " * 5, [artist(1, "A")]), track(2, "Short", [artist(1, "A")])
    del long["album"], short["album"]
    document = playlist_document("p1", "Playlist " * 4, [long, short])

    report = ingest_document(
        catalog_engine, "spotify:playlist:p1", document, limits=InputLimits(max_name_chars=10)
    )

    assert report.ok and report.rejected == 2
    with catalog_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM playlist")).scalar_one() == "Playlist P"
        titles = sorted(conn.execute(sa.text("SELECT title FROM track")).scalars())
        batch = conn.execute(sa.text("SELECT id FROM ingest_batch")).scalar_one()
    assert titles == ["Short", "Title Titl"]
    assert stored_rejects(catalog_engine) == [
        ("playlist spotify:playlist:p1", "name of 36 characters cut to 10 (RECSYS_MAX_NAME_CHARS)", batch),
        (f"track spotify:track:{sid(1)}", "title of 30 characters cut to 10 (RECSYS_MAX_NAME_CHARS)", batch),
    ]


def test_a_name_cut_at_the_default_keeps_its_batch(catalog_engine: sa.Engine) -> None:
    document = playlist_document("p2", "Fine", [track(1, noise(2_000, 1), [artist(1, "A")])])
    ingest_document(catalog_engine, "spotify:playlist:p2", document)
    with catalog_engine.connect() as conn:
        batch = conn.execute(sa.text("SELECT id FROM ingest_batch")).scalar_one()
    assert stored_rejects(catalog_engine) == [
        (
            f"track spotify:track:{sid(1)}",
            "title of 2,000 characters cut to 1,000 (RECSYS_MAX_NAME_CHARS)",
            batch,
        )
    ]


def test_ids_and_values_no_column_holds(catalog_engine: sa.Engine) -> None:
    odd = track(1, "Odd", [artist(1, "A")], external_ids={"isrc": "GBAAA8100001XYZ123"}, duration_ms=2**40)
    odd["album"]["album_type"] = "x" * 40
    negative = track(2, "Negative", [artist(1, "A")], duration_ms=-5, external_ids={"isrc": noise(3_000, 2)})
    fine = track(3, "Fine", [artist(1, "A")])
    lists = [
        playlist_document("p1", "Counted", [odd, negative, fine], followers={"total": 2**40}),
        playlist_document("p2", "Negative", [fine], followers={"total": -5}),
        playlist_document(noise(1_000, 3), "Long id", [fine]),
    ]

    report = ingest_document(catalog_engine, "spotify:search:x", {"playlists": {"items": lists}})

    assert report.ok
    with catalog_engine.connect() as conn:
        tracks = conn.execute(sa.text("SELECT title, isrc, duration_ms FROM track ORDER BY title")).all()
        albums = conn.execute(sa.text("SELECT album_type FROM album")).scalars().all()
        playlists = conn.execute(sa.text("SELECT source_key, num_followers FROM playlist ORDER BY 1")).all()
    assert [tuple(t) for t in tracks] == [
        ("Fine", "GBAAA8100001", 181_000),
        ("Negative", None, None),
        ("Odd", None, None),
    ]
    assert albums == [None]  # the planted album of every track: its one type was refused
    assert [tuple(p) for p in playlists] == [("spotify:playlist:p1", None), ("spotify:playlist:p2", None)]
    where = "spotify:search:x.playlists.items"
    reasons = {(location, reason) for location, reason, _ in stored_rejects(catalog_engine)}
    assert reasons == {
        (
            f"{where}[0]",
            "invalid followers.total: 1099511627776 is not a whole number from 0 to 2,147,483,647; stored as null",
        ),
        (
            f"{where}[1]",
            "invalid followers.total: -5 is not a whole number from 0 to 2,147,483,647; stored as null",
        ),
        (f"{where}[2]", f"invalid id: longer than {MAX_ID_BYTES} bytes: not an id"),
        (f"{where}[0].items[0]", "invalid isrc: 'GBAAA8100001XYZ123' is not an ISRC; stored as null"),
        (
            f"{where}[0].items[0]",
            "invalid duration_ms: 1099511627776 is not a whole number from 1 to 2,147,483,647; stored as null",
        ),
        (
            f"{where}[0].items[0]",
            "invalid album_type: '" + "x" * 40 + "' is not text of at most 16 characters; stored as null",
        ),
        (f"{where}[0].items[1]", f"invalid isrc: '{noise(3_000, 2)[:79]}…' is not an ISRC; stored as null"),
        (
            f"{where}[0].items[1]",
            "invalid duration_ms: -5 is not a whole number from 1 to 2,147,483,647; stored as null",
        ),
    }


def test_an_id_longer_than_an_id_is_refused_before_any_request() -> None:
    with pytest.raises(InputError, match=f"longer than {MAX_ID_BYTES} bytes: not an id"):
        parse_id("playlist", "a" * 600)
    assert parse_id("playlist", "a" * 100) == "a" * 100
