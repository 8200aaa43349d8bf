"""The MPD bad-input corpus: every bad record gives a clear reason, the good ones beside it land.

The files are generated here: truncated JSON, invalid UTF-8, missing required fields,
an empty playlist, a 10,000-track playlist (valid: it lands whole), gzip and zip
inputs, a file that is not JSON; and the real full-schema sample.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog.queries import catalog_stats
from tests.catalog.test_entries import entry_rows

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def uri(n: int) -> str:
    digits = []
    for _ in range(22):
        n, r = divmod(n, 62)
        digits.append(ALPHABET[r])
    return "spotify:track:" + "".join(reversed(digits))


def track(n: int) -> dict[str, Any]:
    return {"artist_name": f"Artist {n % 7}", "track_uri": uri(n), "track_name": f"Song {n}"}


def playlist(pid: int, n: int, first: int = 0, **fields: Any) -> dict[str, Any]:
    record = {"name": f"Playlist {pid}", "pid": pid, "num_followers": 1}
    record["tracks"] = [track(first + i) for i in range(n)]
    record.update(fields)
    return record


def slice_bytes(playlists: list[Any]) -> bytes:
    return json.dumps({"info": {"slice": "test", "version": "v1"}, "playlists": playlists}, indent=1).encode()


def stored(engine: sa.Engine) -> dict[str, list[str]]:
    """Every playlist's track URIs in position order."""
    out: dict[str, list[str]] = {}
    for key, _, track_uri in entry_rows(engine):
        out.setdefault(key, []).append(track_uri)
    return out


def rejects(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT location, reason FROM ingest_reject ORDER BY location")).all()
    return [(r[0], r[1]) for r in rows]


def reject_for(found: list[tuple[str, str]], location_part: str) -> str:
    matches = [reason for location, reason in found if location.endswith(location_part)]
    assert len(matches) == 1, f"expected one reject at {location_part!r}, got {matches} in {found}"
    return matches[0]


def test_bad_records_are_rejected_with_reasons_and_good_ones_land(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    good = [playlist(1, 5), playlist(2, 4, first=100)]
    good[1]["tracks"].append(track(100))  # a repeated track is a valid entry, kept in order
    (folder / "a_good.json").write_bytes(slice_bytes(good))

    # Truncated: the two playlists before the break land.
    full = slice_bytes([playlist(10, 3, first=200), playlist(11, 3, first=210), playlist(12, 3, first=220)])
    cut = full.index(b'"pid": 12')
    (folder / "b_truncated.json").write_bytes(full[:cut])

    # Invalid UTF-8 in a playlist name and in one track name: only those records are rejected.
    broken = slice_bytes(
        [playlist(20, 3, first=300, name="NAME_A"), playlist(21, 3, first=310), playlist(22, 2, first=320)]
    )
    broken = broken.replace(b"NAME_A", b"Caf\xe9 \xff").replace(b"Song 311", b"Song \xc3\x28")
    (folder / "c_invalid_utf8.json").write_bytes(broken)

    # Missing or wrong required fields, an empty playlist, a duplicate pid, a non-object record.
    no_pid = playlist(0, 2, first=400)
    del no_pid["pid"]
    no_name = playlist(31, 2, first=410)
    del no_name["name"]
    no_tracks = playlist(32, 0)
    del no_tracks["tracks"]
    mixed = playlist(33, 6, first=430)
    del mixed["tracks"][1]["track_uri"]
    del mixed["tracks"][2]["track_name"]
    mixed["tracks"][3]["track_uri"] = "spotify:track:not-a-track"
    mixed["tracks"][4] = "just a string"
    all_bad = playlist(34, 2, first=440)
    for entry in all_bad["tracks"]:
        del entry["artist_name"]
    (folder / "d_missing.json").write_bytes(
        slice_bytes(
            [
                no_pid,
                no_name,
                no_tracks,
                playlist(35, 0),  # empty
                mixed,
                all_bad,
                playlist(36, 3, first=460),
                playlist(36, 3, first=470),  # duplicate pid within the file
                ["not", "an", "object"],
            ]
        )
    )

    # A 10,000-track playlist is valid and lands whole.
    (folder / "e_big.json").write_bytes(slice_bytes([playlist(40, 10_000, first=10_000)]))
    # Compressed inputs.
    (folder / "f_gz.json.gz").write_bytes(gzip.compress(slice_bytes([playlist(50, 4, first=500)])))
    with zipfile.ZipFile(folder / "g_archive.zip", "w") as archive:
        archive.writestr("inner/slice.json", slice_bytes([playlist(60, 3, first=600)]))
        archive.writestr("inner/slice2.json.gz", gzip.compress(slice_bytes([playlist(61, 2, first=610)])))
    # Not JSON at all, and JSON that is not an MPD slice.
    (folder / "h_notes.json").write_bytes(b"these are my notes, not a playlist file\n")
    (folder / "i_array.json").write_bytes(b"[1, 2, 3]")

    report = ingest_mpd(catalog_engine, [folder], batch_rows=1_000)

    lists = stored(catalog_engine)
    expected = {
        "mpd:1": [uri(i) for i in range(5)],
        "mpd:2": [uri(100 + i) for i in range(4)] + [uri(100)],
        "mpd:10": [uri(200 + i) for i in range(3)],
        "mpd:11": [uri(210 + i) for i in range(3)],
        "mpd:21": [uri(310), uri(312)],  # the entry with invalid UTF-8 is rejected, its neighbours kept
        "mpd:22": [uri(320), uri(321)],
        "mpd:33": [uri(430), uri(435)],
        "mpd:36": [uri(460 + i) for i in range(3)],
        "mpd:40": [uri(10_000 + i) for i in range(10_000)],
        "mpd:50": [uri(500 + i) for i in range(4)],
        "mpd:60": [uri(600 + i) for i in range(3)],
        "mpd:61": [uri(610 + i) for i in range(2)],
    }
    assert lists == expected
    with catalog_engine.connect() as conn:
        positions = conn.execute(
            sa.text(
                """SELECT pt.position FROM playlist_track pt JOIN playlist p ON p.id = pt.playlist_id
                   WHERE p.source_key = 'mpd:21' ORDER BY pt.position"""
            )
        ).scalars()
        # Positions are the list order in the file: the rejected entry leaves its place empty.
        assert list(positions) == [0, 2]
        num_tracks = dict(conn.execute(sa.text("SELECT source_key, num_tracks FROM playlist")).all())
    assert num_tracks["mpd:40"] == 10_000 and num_tracks["mpd:33"] == 2

    found = rejects(catalog_engine)
    assert reject_for(found, "b_truncated.json: playlists[2:]").startswith(
        "truncated or malformed JSON after playlists[1]"
    )
    assert reject_for(found, "c_invalid_utf8.json: playlists[0] (pid 20)") == (
        "invalid UTF-8 or non-text value in field: name"
    )
    assert reject_for(found, "c_invalid_utf8.json: playlists[1] (pid 21).tracks[1]") == (
        "invalid UTF-8 or non-text value in field: track_name"
    )
    assert reject_for(found, "d_missing.json: playlists[0]") == "missing field: pid (an integer is required)"
    assert reject_for(found, "d_missing.json: playlists[1] (pid 31)") == "missing field: name"
    assert reject_for(found, "d_missing.json: playlists[2] (pid 32)") == (
        "missing field: tracks (a list is required)"
    )
    assert reject_for(found, "d_missing.json: playlists[3] (pid 35)") == "empty playlist: no tracks"
    assert reject_for(found, "(pid 33).tracks[1]") == "missing field: track_uri"
    assert reject_for(found, "(pid 33).tracks[2]") == "missing field: track_name"
    assert reject_for(found, "(pid 33).tracks[3]") == "invalid track_uri: 'spotify:track:not-a-track'"
    assert reject_for(found, "(pid 33).tracks[4]") == "track entry is not a JSON object"
    assert reject_for(found, "(pid 34).tracks[0]") == "missing field: artist_name"
    assert reject_for(found, "(pid 34).tracks[1]") == "missing field: artist_name"
    assert reject_for(found, "d_missing.json: playlists[5] (pid 34)") == (
        "empty playlist: every track entry was rejected"
    )
    assert reject_for(found, "d_missing.json: playlists[7] (pid 36)") == "duplicate pid within the file"
    assert reject_for(found, "d_missing.json: playlists[8]") == "playlist is not a JSON object"
    assert reject_for(found, "h_notes.json").startswith("not readable as JSON")
    assert reject_for(found, "i_array.json") == "not an MPD slice (no 'playlists' array at the top level)"
    assert len(found) == 18

    assert not report.ok
    assert sorted(line.split(":")[0].rsplit("/", 1)[-1] for line in report.unreadable) == [
        "h_notes.json",
        "i_array.json",
    ]
    assert report.loaded["playlists"] == 12
    assert report.loaded["playlist_tracks"] == sum(len(v) for v in expected.values())
    assert report.rejected == 16  # the two unreadable files are counted apart

    # Run again: nothing changes (each file that was read is recorded as done).
    with catalog_engine.connect() as conn:
        before = catalog_stats(conn)
    again = ingest_mpd(catalog_engine, [folder], batch_rows=1_000)
    assert (again.inputs, again.skipped) == (10, 8)  # inputs read whole are skipped (zip members: two)
    assert len(again.unreadable) == 2  # the unreadable ones are said again; their rejects are not repeated
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == before


@pytest.mark.shared_data
def test_full_schema_sample_lands_with_albums_and_durations(
    catalog_engine: sa.Engine, shared_data: Path
) -> None:
    path = shared_data / "mpd_schema" / "mpd_full_schema_sample.json"
    document = json.loads(path.read_bytes())
    report = ingest_mpd(catalog_engine, [path])
    assert report.ok and report.rejected == 0, report.summary()
    lists = stored(catalog_engine)
    assert lists == {f"mpd:{p['pid']}": [t["track_uri"] for t in p["tracks"]] for p in document["playlists"]}
    first = document["playlists"][0]["tracks"][0]
    with catalog_engine.connect() as conn:
        row = conn.execute(
            sa.text(
                """SELECT t.duration_ms, al.spotify_uri, al.title, a.spotify_uri FROM track t
                   JOIN album al ON al.id = t.album_id JOIN artist a ON a.id = t.artist_id
                   WHERE t.source_key = :uri"""
            ),
            {"uri": first["track_uri"]},
        ).one()
        collaborative = conn.execute(sa.text("SELECT collaborative FROM playlist")).scalars().all()
    assert tuple(row) == (first["duration_ms"], first["album_uri"], first["album_name"], first["artist_uri"])
    assert [bool(c) for c in collaborative] == [p["collaborative"] == "true" for p in document["playlists"]]
