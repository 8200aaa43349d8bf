"""Generated valid MPD slices go in and come back out equal (hypothesis)."""

from __future__ import annotations

import itertools
import json
import unicodedata
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipelines.ingest.mpd import ingest_mpd
from pipelines.ingest.mpd_parse import ParsedSlice, _parse_clean, _parse_records, parse_slice
from recsys.catalog import batches

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_examples = itertools.count()

# Clean display text: letters, digits and punctuation of any script, single spaces, NFC.
words = st.text(
    alphabet=st.characters(categories=["L", "M", "N", "P", "S"], exclude_characters="\u2028\u2029"),
    min_size=1,
    max_size=12,
)
clean_text = st.lists(words, min_size=1, max_size=4).map(
    lambda ws: unicodedata.normalize("NFC", " ".join(ws))
)
clean_text = clean_text.filter(lambda s: s == " ".join(s.split()) and s != "")
suffixes = st.text(alphabet=ALNUM, min_size=16, max_size=16)


@st.composite
def slices(draw: Any) -> list[dict[str, Any]]:
    """Valid playlists in the trimmed or the full schema; tracks may repeat within and across playlists."""
    pool = draw(st.lists(suffixes, min_size=1, max_size=15, unique=True))
    full = draw(st.booleans())
    playlists = []
    for pid in draw(st.lists(st.integers(0, 10**9), min_size=1, max_size=6, unique=True)):
        tracks = []
        for position, suffix in enumerate(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=25))):
            entry = {"artist_name": "A " + suffix[:3], "track_uri": suffix, "track_name": "T " + suffix[3:6]}
            if full:
                entry.update(pos=position, duration_ms=1_000 + position, album_name="Album " + suffix[:2])
            tracks.append(entry)
        record: dict[str, Any] = {"name": draw(clean_text), "pid": pid, "tracks": tracks}
        if draw(st.booleans()):
            record["description"] = draw(clean_text)
        record["num_followers"] = draw(st.integers(0, 10**6))
        playlists.append(record)
    return playlists


def with_prefix(playlists: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Give every track URI this example's prefix (URIs are 22 characters after ``spotify:track:``)."""
    for record in playlists:
        for entry in record["tracks"]:
            if not entry["track_uri"].startswith("spotify:track:"):
                entry["track_uri"] = f"spotify:track:{prefix}{entry['track_uri']}"
    return playlists


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(playlists=slices())
def test_generated_slices_round_trip(sqlite_engine: sa.Engine, tmp_path: Path, playlists: list[Any]) -> None:
    n = next(_examples)
    prefix = f"{n:06d}"
    playlists = with_prefix(playlists, prefix)
    path = tmp_path / f"example_{n}.json"
    path.write_text(
        json.dumps({"info": {}, "playlists": playlists}, ensure_ascii=bool(n % 2)), encoding="utf-8"
    )
    namespace = f"example{n}"

    report = ingest_mpd(sqlite_engine, [path], namespace=namespace, batch_rows=1_000)
    assert report.ok and report.rejected == 0, report.summary()

    with sqlite_engine.connect() as conn:
        stored = {
            r[0]: r[1:]
            for r in conn.execute(
                sa.text(
                    "SELECT source_key, name, description, num_followers, num_tracks FROM playlist "
                    "WHERE namespace = :ns"
                ),
                {"ns": namespace},
            )
        }
        entries: dict[str, list[str]] = {}
        for key, uri in conn.execute(
            sa.text(
                """SELECT p.source_key, t.source_key FROM playlist_track pt
                   JOIN playlist p ON p.id = pt.playlist_id JOIN track t ON t.id = pt.track_id
                   WHERE p.namespace = :ns ORDER BY p.source_key, pt.position"""
            ),
            {"ns": namespace},
        ):
            entries.setdefault(key, []).append(uri)
        titles = dict(
            conn.execute(
                sa.text("SELECT source_key, title || '/' || artist_name FROM track WHERE source_key LIKE :p"),
                {"p": f"spotify:track:{prefix}%"},
            ).all()
        )

    assert stored == {
        f"mpd:{p['pid']}": (p["name"], p.get("description"), p["num_followers"], len(p["tracks"]))
        for p in playlists
    }
    assert entries == {f"mpd:{p['pid']}": [t["track_uri"] for t in p["tracks"]] for p in playlists}
    first: dict[str, str] = {}
    for p in playlists:
        for t in p["tracks"]:
            first.setdefault(t["track_uri"], f"{t['track_name']}/{t['artist_name']}")
    assert titles == first


@settings(max_examples=60, deadline=None)
@given(playlists=slices())
def test_column_parser_matches_record_parser(playlists: list[Any]) -> None:
    """The fast column-wise path and the record-by-record path give the same result on clean slices."""
    playlists = with_prefix(playlists, "ABCDEF")
    fast = _parse_clean(playlists)
    assert fast is not None
    slow = _parse_records("x.json", playlists, batches.RejectLog("mpd"), None)
    assert_same(fast, slow)


def assert_same(a: ParsedSlice, b: ParsedSlice) -> None:
    assert_frame_equal(a.playlists, b.playlists)
    assert_frame_equal(a.tracks, b.tracks)
    assert_frame_equal(a.entries, b.entries)
    assert a.problem == b.problem


@settings(max_examples=60, deadline=None)
@given(
    playlists=slices(),
    damage=st.sampled_from(["uri", "name", "type", "missing", "entry"]),
    where=st.integers(0, 10**6),
)
def test_one_bad_entry_falls_back_to_the_record_parser(playlists: list[Any], damage: str, where: int) -> None:
    """Any damaged entry sends the slice to the record parser, which rejects exactly that entry."""
    playlists = with_prefix(playlists, "ABCDEF")
    record = playlists[where % len(playlists)]
    index = where % len(record["tracks"])
    entry = record["tracks"][index]
    if damage == "uri":
        entry["track_uri"] = entry["track_uri"] + "\n"
    elif damage == "name":
        entry["track_name"] = None
    elif damage == "type":
        entry["artist_name"] = 7
    elif damage == "missing":
        del entry["track_uri"]
    else:
        record["tracks"][index] = [entry]
    assert _parse_clean(playlists) is None
    log = batches.RejectLog("mpd")
    data = json.dumps({"playlists": playlists}).encode()
    parsed = parse_slice("x.json", data, log)
    locations = [row["location"] for row in log.rows]
    assert f"x.json: playlists[{playlists.index(record)}] (pid {record['pid']}).tracks[{index}]" in locations
    total = sum(len(p["tracks"]) for p in playlists)
    assert parsed.n_entries == total - 1
