"""Hostile MPD input: each case costs one clear reject, never the machine, and the good input beside it lands.

Every input is generated here: JSON nested 100,000 levels deep, gzip and zip bombs,
1 MB names, timestamps no database can store, lone surrogate escapes beside integers
wider than 64 bits, blank names, a symbolic link loop, gzip files with a forged size.
The last test runs the real command over all of them at once under a memory limit.
"""

from __future__ import annotations

import gzip
import os
import random
import string
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.ingest import mpd_inputs
from pipelines.ingest.guards import InputLimits, json_depth
from pipelines.ingest.mpd import ingest_mpd
from pipelines.ingest.tables import ingest_table
from recsys.catalog import keys as k
from recsys.catalog.schema import Playlist
from tests.cli.child import recsys
from tests.ingest.test_mpd_bad_input import playlist, reject_for, rejects, slice_bytes, stored, uri

DEPTH_REASON = "JSON nested more than 64 levels deep (RECSYS_MAX_JSON_DEPTH)"


def expected(*playlists: dict[str, Any]) -> dict[str, list[str]]:
    return {f"mpd:{p['pid']}": [t["track_uri"] for t in p["tracks"]] for p in playlists}


def noise(n: int, seed: int) -> str:
    """``n`` random letters and digits: text PostgreSQL cannot compress into an index entry."""
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=n))


def unreadable_reasons(report: Any) -> dict[str, str]:
    """Per unreadable input (its file name, with a zip member after ``!``), the reason given."""
    out = {}
    for line in report.unreadable:
        location, reason = line.split(": ", 1)
        out[location.rsplit("/", 1)[-1]] = reason
    return out


def test_json_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth(b"") == 0
    assert json_depth(b'{"a": [1, {"b": "[[[{{"}]}') == 3
    assert json_depth(rb'{"a": "x\"[[[", "b": []}') == 2  # an escaped quote does not end the string
    assert json_depth(rb'{"a": "x\\", "b": [[]]}') == 3  # an escaped backslash does not escape the quote
    assert json_depth(rb'{"a": "x\\\"[", "b": [[[]]]}') == 4
    assert json_depth(b"[" * 100_000) == 100_000
    assert json_depth(b"[" * 3_000_000, stop=64) <= 1 << 20  # stops at the end of the block past the limit
    data = slice_bytes([playlist(1, 3)])
    assert json_depth(data) == 5  # {playlists: [ {tracks: [ {…} ] } ] }: the entries are the fifth level
    assert json_depth(b'"' + b"[" * 3_000_000 + b'"') == 0  # across scan blocks, all inside one string


def test_json_nested_too_deep_is_refused_by_name_and_the_rest_lands(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    first, last = playlist(1, 3), playlist(3, 2, first=50)
    (folder / "a_good.json").write_bytes(slice_bytes([first]))
    # orjson refuses more than 1,024 levels; the recovery parser then built them all.
    (folder / "b_deep_list.json").write_bytes(b'{"playlists": ' + b"[" * 5_000)
    deep_entry = playlist(2, 2, first=20)
    deep_entry["tracks"][0] = "DEEP"
    text = slice_bytes([deep_entry]).replace(b'"DEEP"', b'{"a": ' * 2_000 + b"1" + b"}" * 2_000)
    (folder / "c_deep_entry.json").write_bytes(text)
    (folder / "d_good.json").write_bytes(slice_bytes([last]))

    report = ingest_mpd(sqlite_engine, [folder])

    assert stored(sqlite_engine) == expected(first, last)
    assert unreadable_reasons(report) == {"b_deep_list.json": DEPTH_REASON, "c_deep_entry.json": DEPTH_REASON}
    found = rejects(sqlite_engine)
    assert reject_for(found, "b_deep_list.json") == DEPTH_REASON
    assert reject_for(found, "c_deep_entry.json") == DEPTH_REASON


def pad(data: bytes, size: int) -> bytes:
    """A valid slice of at least ``size`` bytes: the JSON followed by spaces."""
    return data + b" " * max(0, size - len(data))


def test_inputs_expanding_past_the_limit_are_refused_by_name_and_the_rest_lands(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    limits = InputLimits(max_input_bytes=1 << 20)
    folder = tmp_path / "slices"
    folder.mkdir()
    good = [playlist(1, 3), playlist(4, 2, first=40), playlist(7, 2, first=70)]
    big = {pid: pad(slice_bytes([playlist(pid, 2, first=pid * 10)]), 4 << 20) for pid in (2, 3, 5, 6)}
    with zipfile.ZipFile(folder / "a_archive.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", slice_bytes([good[0]]))
        archive.writestr("b.json", big[2])
        archive.writestr("c.json.gz", gzip.compress(big[3]))
        archive.writestr("d.json", slice_bytes([good[1]]))
    (folder / "b.json.gz").write_bytes(gzip.compress(big[5]))
    (folder / "c.json").write_bytes(big[6])
    (folder / "d.json").write_bytes(slice_bytes([good[2]]))

    for _ in range(2):  # and again: the good inputs are skipped, the large ones refused again
        report = ingest_mpd(sqlite_engine, [folder], limits=limits)
        assert stored(sqlite_engine) == expected(*good)
        reason = "expands to more than 1,048,576 bytes (RECSYS_MAX_INPUT_BYTES)"
        assert unreadable_reasons(report) == {
            "a_archive.zip!b.json": reason,
            "a_archive.zip!c.json.gz": reason,
            "b.json.gz": reason,
            "c.json": reason,
        }
    found = rejects(sqlite_engine)
    for location in ("a_archive.zip!b.json", "a_archive.zip!c.json.gz", "b.json.gz", "c.json"):
        assert reject_for(found, location) == reason
    # Within the limit, the same input lands whole.
    report = ingest_mpd(sqlite_engine, [folder / "c.json"], limits=InputLimits(max_input_bytes=8 << 20))
    assert report.ok and "mpd:6" in stored(sqlite_engine)


def playlist_times(engine: sa.Engine) -> dict[str, datetime | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Playlist.source_key, Playlist.modified_at)).all()
    out = {}
    for key, value in rows:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        out[key] = value
    return out


def test_modified_at_out_of_range_is_stored_as_null_with_a_reject(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    times: dict[int, Any] = {
        # a clean slice, read natively: integers
        1: 1_500_000_000,
        2: 1_500_000_000_000,  # milliseconds: the year 49,503
        3: -5_000_000_000_000,
        4: 4_102_444_800,  # 2100-01-01: the first second out of range
        # read record by record (one entry is bad): floats and integers wider than 64 bits
        10: 1e20,
        11: 10**25,
        12: -1e15,
        13: 1_400_000_000.5,
        # read column-wise from Python objects (a boolean 'collaborative')
        20: 1_500_000_000_000,
        21: 1_300_000_000,
    }
    strict = [playlist(pid, 2, first=pid * 10, modified_at=times[pid]) for pid in (1, 2, 3, 4)]
    records = [playlist(pid, 2, first=pid * 10, modified_at=times[pid]) for pid in (10, 11, 12, 13)]
    del records[3]["tracks"][0]["track_uri"]
    clean = [playlist(pid, 2, first=pid * 10, modified_at=times[pid], collaborative=True) for pid in (20, 21)]
    (folder / "a_strict.json").write_bytes(slice_bytes(strict))
    (folder / "b_records.json").write_bytes(slice_bytes(records))
    (folder / "c_clean.json").write_bytes(slice_bytes(clean))

    report = ingest_mpd(catalog_engine, [folder])

    assert report.ok, report.unreadable
    assert set(stored(catalog_engine)) == {f"mpd:{pid}" for pid in times}
    valid = {1, 13, 21}
    assert playlist_times(catalog_engine) == {
        f"mpd:{pid}": datetime.fromtimestamp(value, UTC).replace(tzinfo=None) if pid in valid else None
        for pid, value in times.items()
    }
    found = rejects(catalog_engine)
    shown = {
        2: "1500000000000",
        3: "-5000000000000",
        4: "4102444800",
        10: "1e+20",
        11: "1e+25",
        12: "-1e+15",
        20: "1500000000000",
    }
    for pid, text in shown.items():
        reason = reject_for(found, f"(pid {pid})")
        assert reason == (
            f"invalid modified_at: {text} is not a time in seconds between 1970 and 2100; stored as null"
        )
    # The files are done: a rerun skips them instead of failing on them again.
    again = ingest_mpd(catalog_engine, [folder])
    assert (again.inputs, again.skipped) == (3, 3)


def test_names_of_a_megabyte_are_cut_and_the_chunk_lands(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    huge = {
        field: noise(1_000_000, seed)
        for seed, field in enumerate(("track_name", "artist_name", "album_name", "name", "description"))
    }
    first = playlist(1, 3, name=huge["name"], description=huge["description"])
    first["tracks"][1].update(
        track_name=huge["track_name"], artist_name=huge["artist_name"], album_name=huge["album_name"]
    )
    # 900 characters, within the limit, whose key NFKC makes 16 times longer.
    wide = playlist(2, 2, first=20)
    wide["tracks"][0]["artist_name"] = "\ufdfa" * 900
    others = [wide, playlist(3, 4, first=30)]
    path = tmp_path / "long.json"
    path.write_bytes(slice_bytes([first, *others]))

    report = ingest_mpd(catalog_engine, [path])

    assert report.ok
    assert stored(catalog_engine) == expected(first, *others)
    with catalog_engine.connect() as conn:
        title, artist, album, recording = conn.execute(
            sa.text(
                """SELECT t.title, t.artist_name, al.title, t.recording_key FROM track t
                   JOIN album al ON al.id = t.album_id WHERE t.source_key = :uri"""
            ),
            {"uri": uri(1)},
        ).one()
        name, description = conn.execute(
            sa.text("SELECT name, description FROM playlist WHERE source_key = 'mpd:1'")
        ).one()
        widest = conn.execute(
            sa.text("""SELECT max(length(source_key)), max(length(name_key)) FROM artist""")
        ).one()
        keys = conn.execute(sa.text("SELECT source_key, recording_key FROM track")).all()
        album_keys = conn.execute(sa.text("SELECT source_key FROM album")).scalars().all()
    assert (title, artist, album) == (
        huge["track_name"][:1_000],
        huge["artist_name"][:1_000],
        huge["album_name"][:1_000],
    )
    assert (name, description) == (huge["name"][:1_000], huge["description"][:1_000])
    assert recording == k.apply_one(k.recording_key, huge["artist_name"][:1_000], huge["track_name"][:1_000])
    assert max(len(key.encode()) for row in keys for key in row) <= 2 * k.MAX_KEY_BYTES + 6
    assert max(len(key.encode()) for key in album_keys) <= 2 * k.MAX_KEY_BYTES + 6
    assert widest[0] <= k.MAX_KEY_BYTES + 5 and widest[1] <= k.MAX_KEY_BYTES
    found = rejects(catalog_engine)
    at = "long.json: playlists[0] (pid 1)"
    cut = "of 1,000,000 characters cut to 1,000 (RECSYS_MAX_NAME_CHARS)"
    assert sorted(reason for location, reason in found if location.endswith(at + ".tracks[1]")) == [
        f"album_name {cut}",
        f"artist_name {cut}",
        f"track_name {cut}",
    ]
    assert sorted(reason for location, reason in found if location.endswith(at)) == [
        f"description {cut}",
        f"name {cut}",
    ]
    assert len(found) == 5


def test_table_names_of_a_megabyte_are_cut_too(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    """Every source's tracks pass the same cut (normalize.prepare_tracks) and the same bounded keys."""
    title, artist = noise(1_000_000, 1), noise(1_000_000, 2)
    path = tmp_path / "tracks.csv"
    path.write_text(f"id,title,artist\nx1,{title},{artist}\nx2,Halo,Beyoncé\n", encoding="utf-8")

    report = ingest_table(catalog_engine, [path], kind="tracks")

    assert report.ok and report.loaded["tracks"] == 2
    with catalog_engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT source_key, title || '/' || artist_name FROM track")).all())
        found = conn.execute(sa.text("SELECT location, reason FROM ingest_reject ORDER BY reason")).all()
    assert rows == {"table:x1": f"{title[:1_000]}/{artist[:1_000]}", "table:x2": "Halo/Beyoncé"}
    cut = "of 1,000,000 characters cut to 1,000 (RECSYS_MAX_NAME_CHARS)"
    assert [tuple(r) for r in found] == [
        ("track table:x1", f"artist_credit {cut}"),
        ("track table:x1", f"title {cut}"),
    ]


def test_lone_surrogates_and_wide_integers_keep_the_playlists_after_them(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    # orjson refuses the lone surrogates; the recovery parser stopped at the first integer
    # wider than 64 bits and dropped every playlist after it.
    marked = [
        playlist(1, 3),
        playlist(2, 2, first=20, num_followers=2**70),
        playlist(3, 2, first=30),
        playlist(4, 2, first=40),
    ]
    marked[0]["tracks"][1]["track_name"] = "HIGH"
    marked[2]["tracks"][0]["track_name"] = "LOW"
    marked[3]["tracks"][1]["track_name"] = "LITERAL"
    text = (
        slice_bytes(marked)
        .replace(b'"HIGH"', rb'"Bad \ud800 name"')
        .replace(b'"LOW"', rb'"\udc00"')
        .replace(b'"LITERAL"', rb'"Literal \\ud800"')  # an escaped backslash: text, not an escape
    )
    (folder / "a_surrogates.json").write_bytes(text)
    # Truncated after an integer wider than 64 bits: what precedes the cut lands.
    cut = [
        playlist(10, 2, first=100),
        playlist(11, 2, first=110, num_followers=2**70),
        playlist(12, 2, first=120),
        playlist(13, 2, first=130),
        playlist(14, 2, first=140),
    ]
    full = slice_bytes(cut)
    (folder / "b_truncated.json").write_bytes(full[: full.index(b'"pid": 14')])

    report = ingest_mpd(catalog_engine, [folder])

    assert report.ok
    lists = stored(catalog_engine)
    want = expected(*marked, *cut[:4])
    want["mpd:1"].remove(uri(1))
    want["mpd:3"].remove(uri(30))
    assert lists == want
    with catalog_engine.connect() as conn:
        literal = conn.execute(
            sa.text("SELECT title FROM track WHERE source_key = :u"), {"u": uri(41)}
        ).scalar()
        followers = dict(conn.execute(sa.text("SELECT source_key, num_followers FROM playlist")).all())
    assert literal == "Literal \\ud800"
    assert followers["mpd:2"] is None and followers["mpd:11"] is None and followers["mpd:12"] == 1
    found = rejects(catalog_engine)
    bad = "invalid UTF-8 or non-text value in field: track_name"
    assert reject_for(found, "a_surrogates.json: playlists[0] (pid 1).tracks[1]") == bad
    assert reject_for(found, "a_surrogates.json: playlists[2] (pid 3).tracks[0]") == bad
    assert reject_for(found, "b_truncated.json: playlists[4:]").startswith(
        "truncated or malformed JSON after playlists[3]"
    )
    wide = (
        "invalid num_followers: 1.18059e+21 is not a whole number between 0 and 2,147,483,647; stored as null"
    )
    assert reject_for(found, "a_surrogates.json: playlists[1] (pid 2)") == wide
    assert reject_for(found, "b_truncated.json: playlists[1] (pid 11)") == wide
    assert len(found) == 5


def test_blank_track_and_artist_names_are_rejected_on_every_path(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    blanks = {
        1: ("track_name", ""),
        2: ("artist_name", "   "),
        3: ("track_name", "\u200b\u00ad"),
        4: ("artist_name", "\t\n"),
    }
    files = {"a_strict.json": {}, "b_records.json": {"broken": True}, "c_clean.json": {"collaborative": True}}
    want: dict[str, list[str]] = {}
    for number, (name, options) in enumerate(files.items()):
        pid = 10 * number + 1
        record = playlist(pid, 6, first=100 * number)
        for position, (field, value) in blanks.items():
            record["tracks"][position][field] = value
        if options.get("broken"):
            del record["tracks"][5]["track_uri"]
        if "collaborative" in options:
            record["collaborative"] = options["collaborative"]
        (folder / name).write_bytes(slice_bytes([record, playlist(pid + 1, 2, first=100 * number + 50)]))
        kept = [0] + ([] if options.get("broken") else [5])
        want[f"mpd:{pid}"] = [uri(100 * number + i) for i in kept]
        want[f"mpd:{pid + 1}"] = [uri(100 * number + 50 + i) for i in range(2)]

    report = ingest_mpd(sqlite_engine, [folder])

    assert report.ok
    assert stored(sqlite_engine) == want
    found = rejects(sqlite_engine)
    for number, name in enumerate(files):
        for position, (field, _) in blanks.items():
            where = f"{name}: playlists[0] (pid {10 * number + 1}).tracks[{position}]"
            assert reject_for(found, where) == f"missing field: {field} (empty or blank)"


def test_a_symbolic_link_loop_is_named_and_the_other_arguments_go_on(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    loop, missing = tmp_path / "loop.json", tmp_path / "missing.json"
    os.symlink(loop, loop)
    folder = tmp_path / "slices"
    folder.mkdir()
    good = playlist(1, 3)
    (folder / "good.json").write_bytes(slice_bytes([good]))

    report = ingest_mpd(sqlite_engine, [loop, missing, folder])

    assert stored(sqlite_engine) == expected(good)
    assert report.unreadable == [f"{loop}: symbolic link loop", f"{missing}: no such file or directory"]
    found = rejects(sqlite_engine)
    assert reject_for(found, "loop.json") == "symbolic link loop"


def test_a_forged_gzip_size_does_not_set_the_indexes_aside(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    good = playlist(1, 3)
    (folder / "a_good.json").write_bytes(slice_bytes([good]))
    # A truncated gzip file whose last four bytes (read as its size) say 4 GB.
    cut = gzip.compress(slice_bytes([playlist(2, 3, first=20)]))[:-12] + (0xFFFFFFF0).to_bytes(4, "little")
    (folder / "b_cut.json.gz").write_bytes(cut)
    (folder / "c_not_gzip.json.gz").write_bytes(b"not gzip " * 20 + (0xFFFFFFF0).to_bytes(4, "little"))

    assert mpd_inputs._json_size(folder / "b_cut.json.gz") <= 20 * len(cut)
    assert mpd_inputs._json_size(folder / "c_not_gzip.json.gz") == 184
    report = ingest_mpd(sqlite_engine, [folder])

    assert not [m for m in report.messages if "rebuilt" in m], report.messages
    assert stored(sqlite_engine) == expected(good)
    assert sorted(unreadable_reasons(report)) == ["b_cut.json.gz", "c_not_gzip.json.gz"]


# ---------------------------------------------------------------- the command, under a memory limit

# Address space of the command. Polars, Arrow and the database drivers reserve about 3 GB of
# virtual memory that they never touch (thread arenas and stacks): the command needs 3 GB even on
# tiny slices, so 4 GiB leaves about 1 GB to use. The old blow-ups needed far more: 23 GB for the
# deep list, 11 GB for the deep entry, 4.5 GB for the bomb.
ADDRESS_SPACE = 4 << 30


def gzip_bomb(expanded: int) -> bytes:
    """A gzip stream of ``expanded`` bytes (a multiple of 64 MiB): one member repeated, each 64 MiB of spaces."""
    member = gzip.compress(b" " * (64 << 20), compresslevel=9)
    return gzip.compress(b'{"playlists": [') + member * (expanded // (64 << 20))


def write_hostile(folder: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Good slices among hostile ones: (the good playlists' entries, per hostile file the reason it gives)."""
    folder.mkdir()
    good = [playlist(pid, 5 + pid % 4, first=1_000 * pid) for pid in range(1, 9)]
    (folder / "good_1.json").write_bytes(slice_bytes(good[:3]))
    (folder / "good_2.json.gz").write_bytes(gzip.compress(slice_bytes(good[3:5])))
    with zipfile.ZipFile(folder / "good_3.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/good.json", slice_bytes(good[5:7]))
        archive.writestr("zipped_bomb.json.gz", gzip_bomb(2 << 30))
    (folder / "good_4.json").write_bytes(slice_bytes(good[7:]))
    (folder / "deep_list.json").write_bytes(b'{"playlists": ' + b"[" * 100_000)
    entry = playlist(90, 2, first=90_000)
    entry["tracks"][0] = "DEEP"
    (folder / "deep_entry.json").write_bytes(
        slice_bytes([entry]).replace(b'"DEEP"', b'{"a": ' * 100_000 + b"1" + b"}" * 100_000)
    )
    (folder / "bomb.json.gz").write_bytes(gzip_bomb(3 << 30))
    cut = gzip.compress(slice_bytes([playlist(91, 3, first=91_000)]))[:-12] + (0xFFFFFFF0).to_bytes(
        4, "little"
    )
    (folder / "forged_size.json.gz").write_bytes(cut)
    depth = "JSON nested more than 64 levels deep (RECSYS_MAX_JSON_DEPTH)"
    size = f"expands to more than {256 << 20:,} bytes (RECSYS_MAX_INPUT_BYTES)"
    refused = {
        "deep_list.json": depth,
        "deep_entry.json": depth,
        "bomb.json.gz": size,
        "good_3.zip!zipped_bomb.json.gz": size,
        "forged_size.json.gz": "cannot be read",
    }
    # Kept with a reject row each: a 1 MB name (cut), a timestamp in milliseconds (null), a blank
    # title (the entry), a lone surrogate beside a 70-bit integer (the entry).
    odd = [playlist(pid, 3, first=1_000 * pid) for pid in range(20, 24)]
    odd[0]["tracks"][0]["track_name"] = noise(1_000_000, 3)
    odd[1]["modified_at"] = 1_500_000_000_000
    odd[2]["tracks"][2]["track_name"] = " "
    odd[3]["tracks"][1]["track_name"] = "SURROGATE"
    odd[3]["num_followers"] = 2**70
    (folder / "odd.json").write_bytes(slice_bytes(odd).replace(b'"SURROGATE"', rb'"\ud800"'))
    lists = expected(*good, *odd)
    lists["mpd:22"].remove(uri(22_002))
    lists["mpd:23"].remove(uri(23_001))
    return lists, refused


@pytest.mark.slow
def test_the_command_survives_hostile_inputs_under_a_memory_limit(catalog_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(catalog_url)
    from recsys.catalog import db

    db.upgrade(engine)
    folder = tmp_path / "slices"
    lists, refused = write_hostile(folder)
    loop = tmp_path / "loop.json"
    os.symlink(loop, loop)
    result = recsys(
        "ingest",
        "mpd",
        str(loop),
        str(folder),
        env={"RECSYS_DATABASE_URL": catalog_url},
        timeout=600,
        address_space=ADDRESS_SPACE,
    )

    assert result.returncode == 1, (result.returncode, result.stderr[-3_000:])  # never a signal
    assert "Traceback" not in result.stderr, result.stderr[-3_000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    named = {line.split(": ", 2)[1].rsplit("/", 1)[-1]: line.split(": ", 2)[2] for line in lines}
    assert named.keys() == {*refused, "loop.json"}, lines
    for name, reason in refused.items():
        assert named[name].startswith(reason), (name, named[name])
    assert named["loop.json"] == "symbolic link loop"
    try:
        assert stored(engine) == lists
        found = rejects(engine)
        for name in refused:
            assert any(location.endswith(name) for location, _ in found), name
        assert reject_for(found, "odd.json: playlists[0] (pid 20).tracks[0]").startswith(
            "track_name of 1,000,000"
        )
        assert reject_for(found, "odd.json: playlists[1] (pid 21)").startswith(
            "invalid modified_at: 1500000000000"
        )
        assert reject_for(found, "odd.json: playlists[2] (pid 22).tracks[2]") == (
            "missing field: track_name (empty or blank)"
        )
        assert reject_for(found, "odd.json: playlists[3] (pid 23).tracks[1]").startswith("invalid UTF-8")
    finally:
        engine.dispose()
