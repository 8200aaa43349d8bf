"""MPD values no column can hold, or that are not what their field says: stored as null with a reject row each.

``num_followers``, ``duration_ms`` and ``collaborative`` of every kind a hostile slice
can hold (floats, negative numbers, integers past 32 and 64 bits, text, booleans), and
artist or album URIs that are not URIs (a megabyte of text, which PostgreSQL cannot
index): the playlist or entry is kept, the value is null, a reject row says why. The
slices beside them land in full, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.ingest import mpd_parse
from pipelines.ingest.mpd import ingest_mpd
from tests.ingest.test_crash import uri as spotify_uri
from tests.ingest.test_hostile_mpd import expected, noise
from tests.ingest.test_mpd_bad_input import playlist, reject_for, rejects, slice_bytes, stored

FOLLOWERS = {
    1: 12,  # valid
    2: -3,
    3: 2**31,  # past the column's 32 bits
    4: 2**70,  # past 64 bits
    5: 5.5,
    6: "12",
    7: True,
    8: 0,  # valid
}
FOLLOWERS_SHOWN = {2: "-3", 3: "2147483648", 4: "1.18059e+21", 5: "5.5", 6: "'12'", 7: "true"}
DURATIONS = {0: 215_000, 1: 0, 2: -5, 3: 2**31, 4: 2**64, 5: 1.5, 6: "215000", 7: False}
DURATIONS_SHOWN = {1: "0", 2: "-5", 3: "2147483648", 4: "1.84467e+19", 5: "1.5", 6: "'215000'", 7: "false"}
COLLABORATIVE = {30: "yes", 31: 1, 32: "true", 33: False}


def followers(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source_key, num_followers, collaborative FROM playlist")).all()
    return {key: (count, collaborative) for key, count, collaborative in rows}


def durations(engine: sa.Engine) -> dict[str, int | None]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT source_key, duration_ms FROM track")).all())  # type: ignore[arg-type]


def test_invalid_numbers_and_flags_are_stored_as_null_with_a_reject(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    counted = [playlist(pid, 2, first=10 * pid, num_followers=value) for pid, value in FOLLOWERS.items()]
    timed = playlist(20, len(DURATIONS), first=200)
    for position, value in DURATIONS.items():
        timed["tracks"][position]["duration_ms"] = value
    flagged = [playlist(pid, 2, first=10 * pid, collaborative=value) for pid, value in COLLABORATIVE.items()]
    (folder / "a_followers.json").write_bytes(slice_bytes(counted))
    (folder / "b_durations.json").write_bytes(slice_bytes([timed]))
    (folder / "c_flags.json").write_bytes(slice_bytes(flagged))
    good = playlist(40, 3, first=400)
    (folder / "d_good.json").write_bytes(slice_bytes([good]))

    report = ingest_mpd(catalog_engine, [folder])

    assert report.ok, report.unreadable
    assert stored(catalog_engine) == expected(*counted, timed, *flagged, good)
    found = followers(catalog_engine)
    assert {pid: found[f"mpd:{pid}"][0] for pid in FOLLOWERS} == {
        1: 12,
        2: None,
        3: None,
        4: None,
        5: None,
        6: None,
        7: None,
        8: 0,
    }
    assert {pid: found[f"mpd:{pid}"][1] for pid in COLLABORATIVE} == {30: None, 31: None, 32: True, 33: False}
    times = durations(catalog_engine)
    assert {position: times[timed["tracks"][position]["track_uri"]] for position in DURATIONS} == {
        0: 215_000,
        1: None,
        2: None,
        3: None,
        4: None,
        5: None,
        6: None,
        7: None,
    }
    found_rejects = rejects(catalog_engine)
    for pid, shown in FOLLOWERS_SHOWN.items():
        assert reject_for(found_rejects, f"a_followers.json: playlists[{pid - 1}] (pid {pid})") == (
            f"invalid num_followers: {shown} is not a whole number between 0 and 2,147,483,647; stored as null"
        )
    for position, shown in DURATIONS_SHOWN.items():
        assert reject_for(found_rejects, f"b_durations.json: playlists[0] (pid 20).tracks[{position}]") == (
            f"invalid duration_ms: {shown} is not a whole number of milliseconds between 1 and "
            "2,147,483,647; stored as null"
        )
    for index, (pid, shown) in enumerate({30: "'yes'", 31: "1"}.items()):
        assert reject_for(found_rejects, f"c_flags.json: playlists[{index}] (pid {pid})") == (
            f"invalid collaborative: {shown} is not true or false; stored as null"
        )
    assert len(found_rejects) == len(FOLLOWERS_SHOWN) + len(DURATIONS_SHOWN) + 2


def test_slices_with_such_values_are_not_taken_by_the_native_parser() -> None:
    """The native parser declines them, so the record path names each value instead of nulling it silently."""
    for pid, value in {2: -3, 3: 2**31}.items():
        assert mpd_parse._parse_strict(slice_bytes([playlist(pid, 2, num_followers=value)])) is None
    for value in (0, -5, 2**31):
        timed = playlist(1, 2)
        timed["tracks"][0]["duration_ms"] = value
        assert mpd_parse._parse_strict(slice_bytes([timed])) is None
    assert mpd_parse._parse_strict(slice_bytes([playlist(1, 2, collaborative="yes")])) is None
    odd = playlist(1, 2)
    odd["tracks"][1]["album_uri"] = "spotify:album:short"
    assert mpd_parse._parse_strict(slice_bytes([odd])) is None
    fine = playlist(1, 2, num_followers=2**31 - 1, collaborative="false")
    fine["tracks"][0].update(
        duration_ms=2**31 - 1, artist_uri=spotify_uri("artist", 3), album_uri=spotify_uri("album", 4)
    )
    assert mpd_parse._parse_strict(slice_bytes([fine])) is not None


def test_uris_that_are_not_uris_are_stored_as_null_and_the_chunk_lands(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    """A megabyte 'album URI' became an album's source key: on PostgreSQL no index entry holds it."""
    odd = playlist(1, 4, first=10)
    odd["tracks"][0].update(album_uri=noise(1_000_000, 5), album_name="The Album")
    odd["tracks"][1].update(artist_uri="spotify:artist:" + noise(3_000, 6))
    odd["tracks"][2].update(album_uri=17, artist_uri=["not", "text"], album_name={"name": "x"})
    odd["tracks"][3].update(
        artist_uri=spotify_uri("artist", 1), album_uri=spotify_uri("album", 2), album_name="Fine"
    )
    others = [playlist(2, 3, first=20), playlist(3, 2, first=30)]
    path = tmp_path / "uris.json"
    path.write_bytes(slice_bytes([odd, *others]))

    report = ingest_mpd(catalog_engine, [path])

    assert report.ok, report.unreadable
    assert stored(catalog_engine) == expected(odd, *others)
    with catalog_engine.connect() as conn:
        albums = dict(conn.execute(sa.text("SELECT source_key, title FROM album")).all())
        artist_uris = (
            conn.execute(sa.text("SELECT spotify_uri FROM artist WHERE spotify_uri IS NOT NULL"))
            .scalars()
            .all()
        )
        longest = conn.execute(sa.text("SELECT max(length(source_key)) FROM album")).scalar_one()
    assert spotify_uri("album", 2) in albums and "The Album" in albums.values()
    assert artist_uris == [spotify_uri("artist", 1)]
    assert longest < 2_000
    found = rejects(catalog_engine)
    at = "uris.json: playlists[0] (pid 1).tracks"
    assert (
        reject_for(found, f"{at}[0]")
        == f"invalid album_uri: {odd['tracks'][0]['album_uri'][:80]!r}; stored as null"
    )
    assert reject_for(found, f"{at}[1]") == (
        f"invalid artist_uri: {odd['tracks'][1]['artist_uri'][:80]!r}; stored as null"
    )
    assert sorted(reason for location, reason in found if location.endswith(f"{at}[2]")) == [
        "invalid UTF-8 or non-text value in field: album_name; stored as null",
        "invalid album_uri: 17; stored as null",
        "invalid artist_uri: ['not', 'text']; stored as null",
    ]
    assert len(found) == 5
    assert json.dumps(report.as_dict())  # the report itself stays printable


def test_an_input_whose_name_no_index_holds_is_refused_by_name(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    """A zip member's name is part of its input's location, the key of its ingest batch."""
    import zipfile

    long_name = noise(3_000, 7) + ".json"
    good = playlist(1, 3)
    with zipfile.ZipFile(tmp_path / "slices.zip", "w") as archive:
        archive.writestr("a.json", slice_bytes([good]))
        archive.writestr(long_name, slice_bytes([playlist(2, 2, first=20)]))

    report = ingest_mpd(catalog_engine, [tmp_path / "slices.zip"])

    assert stored(catalog_engine) == expected(good)
    [line] = report.unreadable
    size = len(f"{tmp_path / 'slices.zip'}!{long_name}".encode())
    assert line.endswith(f"…: a path of {size:,} bytes, longer than the 2,048 an input's location may hold")
    assert len(line) < 400
    [(location, reason)] = rejects(catalog_engine)
    assert location.endswith(long_name) and reason.startswith(f"a path of {size:,} bytes")
