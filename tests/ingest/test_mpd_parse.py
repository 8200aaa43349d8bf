"""The native slice parser gives exactly what the Python one gives, and declines every slice it cannot vouch for."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from polars.testing import assert_frame_equal

from pipelines.ingest import mpd_parse
from tests.ingest.test_crash import uri


def python_parse(data: bytes) -> mpd_parse.ParsedSlice | None:
    return mpd_parse._parse_clean(orjson.loads(data)["playlists"])


def assert_same(data: bytes) -> mpd_parse.ParsedSlice:
    native, python = mpd_parse._parse_strict(data), python_parse(data)
    assert native is not None and python is not None
    for name in ("playlists", "tracks", "entries"):
        assert_frame_equal(getattr(native, name), getattr(python, name))
    return native


def full_slice() -> dict[str, Any]:
    """Every field the parser reads, in the values real slices hold, and some it ignores."""
    playlists = []
    for pid in range(40):
        tracks = []
        for pos in range(3 + pid % 9):
            n = pid * 13 + pos * 7
            entry: dict[str, Any] = {
                "pos": pos,
                "artist_name": ["Sezen Aksu", "Ravi Shankar", "Χαρούλα Αλεξίου", "A feat. B"][n % 4],
                "track_uri": uri("track", n % 50),
                "artist_uri": uri("artist", n % 4),
                "track_name": f"Şarkı {n} 🎵" if n % 3 else f"Song\t{n}  (Live)",
                "album_uri": uri("album", n % 11),
                "duration_ms": [None, 1, 215_000, 2**31 - 1][n % 4],
                "album_name": f"Albüm {n % 11}",
                "extra": {"nested": [1, 2.5, None]},
            }
            if n % 5 == 0:
                del entry["album_uri"], entry["album_name"]
            if n % 6 == 0:
                entry["artist_uri"] = None
            tracks.append(entry)
        playlist: dict[str, Any] = {
            "name": f"Mix {pid} ☕",
            "collaborative": ["false", "true", None][pid % 3],
            "pid": 1_000 + pid,
            "modified_at": 1_500_000_000 + 86_399 * pid,
            "num_tracks": len(tracks),
            "num_albums": 3,
            "num_followers": pid,
            "tracks": tracks,
        }
        if pid % 4 == 0:
            playlist["description"] = "for the road \u00e9"
        if pid % 5 == 0:
            del playlist["collaborative"], playlist["modified_at"], playlist["num_followers"]
        playlists.append(playlist)
    return {"info": {"slice": "1000-1039", "version": "v1"}, "playlists": playlists}


def test_full_schema_slice_parses_the_same() -> None:
    document = full_slice()
    parsed = assert_same(json.dumps(document, indent=4, ensure_ascii=False).encode())
    assert parsed.n_playlists == 40 and parsed.n_entries == sum(
        len(p["tracks"]) for p in document["playlists"]
    )
    unknown = sum(t["duration_ms"] is None for p in document["playlists"] for t in p["tracks"])
    assert 0 < parsed.tracks["duration_ms"].null_count() == unknown
    assert parsed.playlists["collaborative"].to_list()[:6] == [None, True, None, False, True, None]
    # Escaped and compact JSON read the same as pretty-printed UTF-8.
    assert_same(json.dumps(document, ensure_ascii=True).encode())


def test_generated_slices_parse_the_same(tmp_path: Path) -> None:
    from tests.ingest.test_crash import write_corpus

    write_corpus(tmp_path / "slices")
    clean = 0
    for path in sorted((tmp_path / "slices").glob("*.json")):
        data = path.read_bytes()
        if python_parse(data) is None:  # the file with bad records
            assert mpd_parse._parse_strict(data) is None
            continue
        assert_same(data)
        clean += 1
    assert clean == 19


def test_real_slices_parse_the_same(shared_data: Path) -> None:
    files = sorted((shared_data / "mpd_trimmed").rglob("*.json"))
    assert files
    entries = 0
    for path in files[:: max(1, len(files) // 40)]:
        entries += assert_same(path.read_bytes()).n_entries
    assert entries > 10_000


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for step in path[:-1]:
            target = target[step]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()
TRACK = ("playlists", 2, "tracks", 1)
# Each change makes a slice the native parser must decline: the Python one decides about it.
DECLINED: dict[str, Callable[[dict[str, Any]], None] | bytes] = {
    "name is a number": _set((*TRACK, "track_name"), 123),
    "duration is a float": _set((*TRACK, "duration_ms"), 215_000.5),
    "duration is a bool": _set((*TRACK, "duration_ms"), True),
    "duration is text": _set((*TRACK, "duration_ms"), "215000"),
    # Values stored as null with a reject row, which only the record path writes.
    "duration is zero": _set((*TRACK, "duration_ms"), 0),
    "duration is negative": _set((*TRACK, "duration_ms"), -5),
    "duration is past 32 bits": _set((*TRACK, "duration_ms"), 2**31),
    "followers are negative": _set(("playlists", 1, "num_followers"), -1),
    "followers are past 32 bits": _set(("playlists", 1, "num_followers"), 2**40),
    "collaborative is neither true nor false": _set(("playlists", 1, "collaborative"), "yes"),
    "an artist uri that is not one": _set((*TRACK, "artist_uri"), "spotify:artist:x"),
    "an album uri that is not one": _set((*TRACK, "album_uri"), "x" * 3_000),
    "album is an object": _set((*TRACK, "album_name"), {"name": "x"}),
    "collaborative is a bool": _set(("playlists", 1, "collaborative"), True),
    "modified_at is a float": _set(("playlists", 1, "modified_at"), 1.5e9),
    "followers is text": _set(("playlists", 1, "num_followers"), "12"),
    "pid is text": _set(("playlists", 1, "pid"), "1001"),
    "pid is missing": _set(("playlists", 1, "pid"), _DELETE),
    "pid repeats": _set(("playlists", 1, "pid"), 1_000),
    "name is missing": _set(("playlists", 1, "name"), _DELETE),
    "name is null": _set(("playlists", 1, "name"), None),
    "tracks are missing": _set(("playlists", 1, "tracks"), _DELETE),
    "tracks are null": _set(("playlists", 1, "tracks"), None),
    "tracks are empty": _set(("playlists", 1, "tracks"), []),
    "tracks are an object": _set(("playlists", 1, "tracks"), {}),
    "an entry is text": _set(TRACK, "spotify:track:x"),
    "an entry is null": _set(TRACK, None),
    "track_uri is missing": _set((*TRACK, "track_uri"), _DELETE),
    "track_uri is not a track": _set((*TRACK, "track_uri"), "spotify:album:0000000000000000000000"),
    "artist_name is missing": _set((*TRACK, "artist_name"), _DELETE),
    "track_name is null": _set((*TRACK, "track_name"), None),
    "a playlist is null": _set(("playlists", 1), None),
    "playlists are null": _set(("playlists",), None),
    "playlists are empty": _set(("playlists",), []),
    "invalid UTF-8 in a field it ignores": b'"version": "v\xff1"',
    "invalid UTF-8 in a name": b'"name": "Mix 3 \xc3\x28"',
    "truncated": b"<truncate>",
    "trailing garbage": b"<append> xx",
    "a second document": b'<append>\n{"playlists": []}',
    "a repeated key": b'"pid": 1003, "pid": 1003,',
    "a top-level array": b"<wrap>",
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_slices_with_any_problem_are_declined(case: str) -> None:
    document = full_slice()
    change = DECLINED[case]
    if callable(change):
        change(document)
        data = json.dumps(document, ensure_ascii=False).encode()
    else:
        data = json.dumps(document, ensure_ascii=False).encode()
        if change == b"<truncate>":
            data = data[: len(data) // 2]
        elif change.startswith(b"<append>"):
            data += change.removeprefix(b"<append>")
        elif change == b"<wrap>":
            data = b"[" + data + b"]"
        else:
            anchor = b'"version": "v1"' if b"version" in change else b'"name": "Mix 3 \xe2\x98\x95"'
            if b"pid" in change:
                anchor = b'"pid": 1003,'
            assert anchor in data
            data = data.replace(anchor, change, 1)
    assert mpd_parse._parse_strict(data) is None
