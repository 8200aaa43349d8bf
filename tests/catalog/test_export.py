"""Playlists out: JSPF and M3U documents of planted tracks, and saved playlists that training never reads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipelines.cli import app
from recsys.catalog.export import (
    ExportTrack,
    catalog_playlist,
    export_tracks,
    save_playlist,
    saved_key,
    to_jspf,
    to_m3u,
)
from recsys.catalog.queries import catalog_stats, playlist_entries
from recsys.catalog.schema import Album, AudioAsset, Playlist, PlaylistTrack, Track
from recsys.errors import InputError, NotFoundError

WHEN = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
SPOTIFY_ID = "4uLU6hMCjMI75M1A2tKUQC"
HOSTILE_TITLE = 'Night <script>alert("x")</script>'


def planted(engine: sa.Engine) -> list[int]:
    """Four tracks with awkward names; returns their ids, and a catalog playlist of them."""
    with engine.begin() as conn:
        album = conn.execute(
            sa.insert(Album).values(source_key="al:1", title="Blue\nRiver").returning(Album.id)
        ).scalar_one()
        specs: list[dict[str, Any]] = [
            {
                "source_key": f"spotify:track:{SPOTIFY_ID}",
                "spotify_uri": f"spotify:track:{SPOTIFY_ID}",
                "title": HOSTILE_TITLE,
                "artist_name": 'The "Quoted" Band',
                "album_id": album,
                "duration_ms": 215_400,
            },
            {"source_key": "t:2", "title": "Línea\nDos", "artist_name": "Zoë ✓", "duration_ms": None},
            {
                "source_key": "spotify:track:1234567890123456789012",
                "title": "Three",
                "artist_name": "Artist\r\nCRLF",
                "duration_ms": 1_499,
            },
            {"source_key": "t:4", "title": "Four", "artist_name": "", "duration_ms": 60_000},
        ]
        ids = [
            conn.execute(
                sa.insert(Track)
                .values(title_key=s["title"].lower(), recording_key=s["source_key"], **s)
                .returning(Track.id)
            ).scalar_one()
            for s in specs
        ]
        assets = [
            (ids[0], "/music/a b/ça.flac"),
            (ids[0], "/music/second copy.flac"),
            (ids[1], "file:///srv/x%20y.ogg"),
            (ids[2], "https://cdn.example/x.mp3"),
        ]
        for i, (track_id, uri) in enumerate(assets):
            conn.execute(
                sa.insert(AudioAsset).values(track_id=track_id, uri=uri, checksum=f"{i:064d}", size_bytes=1)
            )
        pid = conn.execute(
            sa.insert(Playlist)
            .values(source_key="mpd:1", name="Road <trip>", name_key="road trip", num_tracks=5, owner="ana")
            .returning(Playlist.id)
        ).scalar_one()
        order = [ids[2], ids[0], ids[1], ids[3], ids[0]]
        conn.execute(
            sa.insert(PlaylistTrack),
            [{"playlist_id": pid, "position": i, "track_id": t} for i, t in enumerate(order)],
        )
    return ids


# --------------------------------------------------------------------------- documents


def test_export_tracks_in_order_with_their_local_audio(catalog_engine: sa.Engine) -> None:
    a, b, c, d = planted(catalog_engine)
    tracks = export_tracks(catalog_engine, [c, a, b, d, a])
    assert [t.track_id for t in tracks] == [c, a, b, d, a]
    assert export_tracks(catalog_engine, np.array([a, c])) == [tracks[1], tracks[0]]  # NumPy ids too
    assert tracks[1] == ExportTrack(
        a,
        HOSTILE_TITLE,
        'The "Quoted" Band',
        "Blue\nRiver",
        215_400,
        f"spotify:track:{SPOTIFY_ID}",
        "/music/a b/ça.flac",
    )
    assert tracks[2].audio_path == "/srv/x y.ogg"  # a file:// asset, decoded
    assert tracks[0].audio_path is None  # only a remote copy
    assert tracks[0].spotify_uri == "spotify:track:1234567890123456789012"  # from its source key
    assert tracks[3].artist is None and tracks[3].spotify_uri is None
    with pytest.raises(NotFoundError, match=r"no track 987654, 987655 in the catalog"):
        export_tracks(catalog_engine, [a, 987654, 987655, 987654])
    with pytest.raises(NotFoundError, match=f"no track {2**70}"):
        export_tracks(catalog_engine, [2**70])
    with pytest.raises(InputError, match="track id must be an integer"):
        export_tracks(catalog_engine, ["1"])  # type: ignore[list-item]


def expected_jspf(a: int, b: int, c: int, d: int) -> dict[str, Any]:
    return {
        "playlist": {
            "title": "Road <trip>",
            "creator": "ana",
            "annotation": 'mixed "for" you\nline two',
            "date": "2026-12-07T10:30:00+00:00",
            "track": [
                {
                    "title": "Three",
                    "creator": "Artist\r\nCRLF",
                    "duration": 1499,
                    "identifier": ["https://open.spotify.com/track/1234567890123456789012"],
                },
                {
                    "title": HOSTILE_TITLE,
                    "creator": 'The "Quoted" Band',
                    "album": "Blue\nRiver",
                    "duration": 215400,
                    "identifier": [f"https://open.spotify.com/track/{SPOTIFY_ID}"],
                    "location": ["file:///music/a%20b/%C3%A7a.flac"],
                },
                {"title": "Línea\nDos", "creator": "Zoë ✓", "location": ["file:///srv/x%20y.ogg"]},
                {"title": "Four", "duration": 60000},
            ],
        }
    }


def check_jspf(document: Any) -> None:
    """The JSPF structure (https://www.xspf.org/jspf): types of every member used."""
    assert set(document) == {"playlist"}
    playlist = document["playlist"]
    assert set(playlist) <= {
        "title",
        "creator",
        "annotation",
        "info",
        "location",
        "identifier",
        "date",
        "track",
    }
    for key in ("title", "creator", "annotation", "date"):
        assert key not in playlist or isinstance(playlist[key], str)
    datetime.fromisoformat(playlist["date"])
    assert isinstance(playlist["track"], list)
    for track in playlist["track"]:
        assert set(track) <= {"title", "creator", "album", "duration", "identifier", "location", "annotation"}
        assert all(isinstance(track[k], str) for k in ("title", "creator", "album") if k in track)
        assert "duration" not in track or (isinstance(track["duration"], int) and track["duration"] >= 0)
        for key in ("identifier", "location"):
            if key in track:
                assert isinstance(track[key], list) and track[key]
                assert all(re.match(r"^[a-z][a-z0-9+.-]*:\S+$", uri) for uri in track[key]), track[key]


def test_jspf_of_a_planted_playlist(catalog_engine: sa.Engine) -> None:
    a, b, c, d = planted(catalog_engine)
    found = catalog_playlist(catalog_engine, "mpd:1")
    tracks = export_tracks(catalog_engine, found.track_ids[:4])
    document = to_jspf(
        found.name, tracks, creator=found.owner, annotation='mixed "for" you\nline two', date=WHEN
    )
    assert document == expected_jspf(a, b, c, d)
    check_jspf(document)
    assert json.loads(json.dumps(document)) == document  # names survive JSON exactly
    bare = to_jspf("x", [], date=WHEN)
    assert bare == {"playlist": {"title": "x", "date": "2026-12-07T10:30:00+00:00", "track": []}}
    check_jspf(to_jspf("now", tracks))


def parse_m3u(text: str) -> tuple[str, list[tuple[int, str, str]], list[str]]:
    """(title, [(seconds, name, location)], comments) of an extended M3U document."""
    lines = text.split("\n")
    assert lines[0] == "#EXTM3U" and lines[-1] == ""
    assert lines[1].startswith("#PLAYLIST:")
    entries, comments, pending = [], [], None
    for line in lines[2:-1]:
        assert line == line.strip() or line.startswith("#EXTINF:")
        if line.startswith("#EXTINF:"):
            assert pending is None
            seconds, name = line[len("#EXTINF:") :].split(",", 1)
            pending = (int(seconds), name)
        elif line.startswith("#"):
            assert pending is None
            comments.append(line)
        else:
            assert pending is not None, line
            entries.append((*pending, line))
            pending = None
    assert pending is None
    return lines[1][len("#PLAYLIST:") :], entries, comments


def test_m3u_round_trip(catalog_engine: sa.Engine) -> None:
    a, b, c, d = planted(catalog_engine)
    text = to_m3u("Road\n<trip>", export_tracks(catalog_engine, [c, a, b, d, a]))
    title, entries, comments = parse_m3u(text)
    assert title == "Road <trip>"
    assert entries == [
        (1, "Artist CRLF - Three", "https://open.spotify.com/track/1234567890123456789012"),
        (215, f'The "Quoted" Band - {HOSTILE_TITLE}', "/music/a b/ça.flac"),
        (-1, "Zoë ✓ - Línea Dos", "/srv/x y.ogg"),
        (215, f'The "Quoted" Band - {HOSTILE_TITLE}', "/music/a b/ça.flac"),
    ]
    assert comments == [f"# track {d} (Four): no local audio and no Spotify link"]


def test_m3u_never_lets_a_path_break_a_line() -> None:
    tracks = [
        ExportTrack(1, "a", None, None, 1000, None, "/music/evil\n#EXTINF:1,x\n/etc/passwd"),
        ExportTrack(2, "b", None, None, 1000, None, "#not a comment.mp3"),
        ExportTrack(3, "c", None, None, 1000, None, " spaced.mp3"),
    ]
    _, entries, comments = parse_m3u(to_m3u("t", tracks))
    assert [e[2] for e in entries] == [
        "file:///music/evil%0A%23EXTINF%3A1%2Cx%0A/etc/passwd",
        "%23not%20a%20comment.mp3",
        "%20spaced.mp3",
    ]
    assert comments == []


names = st.text(min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    title=names,
    rows=st.lists(
        st.tuples(names, st.one_of(st.none(), names), st.one_of(st.none(), st.integers(-5, 10**7))),
        max_size=6,
    ),
)
def test_m3u_round_trips_any_names(title: str, rows: list[tuple[str, str | None, int | None]]) -> None:
    tracks = [
        ExportTrack(i, t, artist, None, ms, f"spotify:track:{SPOTIFY_ID}", None)
        for i, (t, artist, ms) in enumerate(rows)
    ]
    got_title, entries, _ = parse_m3u(to_m3u(title, tracks))

    def one_line(text: str) -> str:
        return " ".join(re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]+", " ", text).split(" ")).strip()

    assert got_title == one_line(title)
    assert len(entries) == len(tracks)
    for (seconds, name, location), track in zip(entries, tracks, strict=True):
        want = one_line(track.title)
        if track.artist:
            want = f"{one_line(track.artist)} - {want}"
        assert name == want
        assert seconds == (
            -1 if track.duration_ms is None or track.duration_ms < 0 else round(track.duration_ms / 1000)
        )
        assert location == f"https://open.spotify.com/track/{SPOTIFY_ID}"


# --------------------------------------------------------------------------- saving


def saved_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    Playlist.id,
                    Playlist.namespace,
                    Playlist.source_key,
                    Playlist.name,
                    Playlist.owner,
                    Playlist.num_tracks,
                )
                .where(Playlist.namespace == "saved")
                .order_by(Playlist.id)
            )
        ]


def test_save_playlist_idempotent_and_never_in_training(catalog_engine: sa.Engine) -> None:
    a, b, _, _ = planted(catalog_engine)
    training = playlist_entries(catalog_engine, namespace="catalog")
    with catalog_engine.connect() as conn:
        stats = catalog_stats(conn)
    hostile = ' <script>"mine"</script>\nSide B ✓ '
    first = save_playlist(
        catalog_engine, name=hostile, track_ids=[b, a, b], user=" ana ", description="first"
    )
    again = save_playlist(catalog_engine, name=hostile.strip(), track_ids=[b, a, b], user="ana")
    assert again == first
    key = saved_key(hostile.strip(), [b, a, b], "ana")
    assert saved_rows(catalog_engine) == [(first, "saved", key, hostile.strip(), "ana", 3)]
    found = catalog_playlist(catalog_engine, str(first))
    assert (found.name, found.namespace, found.track_ids, found.description) == (
        hostile.strip(),
        "saved",
        [b, a, b],
        "first",
    )
    # the description follows the latest save; another order, user or name is another playlist
    assert (
        save_playlist(catalog_engine, name=hostile, track_ids=[b, a, b], user="ana", description="new")
        == first
    )
    assert catalog_playlist(catalog_engine, key).description == "new"
    others = {
        save_playlist(catalog_engine, name=hostile, track_ids=[a, b, b], user="ana"),
        save_playlist(catalog_engine, name=hostile, track_ids=[b, a, b], user="bo"),
        save_playlist(catalog_engine, name=hostile, track_ids=[b, a, b]),
        save_playlist(catalog_engine, name="other", track_ids=[b, a, b], user="ana"),
    }
    assert len(others) == 4 and first not in others
    assert len(saved_rows(catalog_engine)) == 5
    with catalog_engine.connect() as conn:
        name_key = conn.execute(sa.select(Playlist.name_key).where(Playlist.id == first)).scalar_one()
    assert name_key == "script mine script side b"
    # training reads the catalog namespace only: nothing changed there
    assert playlist_entries(catalog_engine, namespace="catalog").equals(training)
    with catalog_engine.connect() as conn:
        assert catalog_stats(conn) == stats
        assert catalog_stats(conn, namespace="saved")["playlist_tracks"] == 3 * 5
    assert playlist_entries(catalog_engine, namespace="saved").height == 15


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "  "}, InputError, "needs a name"),
        ({"name": "n" * 201}, InputError, "at most 200"),
        ({"track_ids": []}, InputError, "nothing to save"),
        ({"track_ids": [1] * 10_001}, InputError, "at most 10,000"),
        ({"track_ids": [987654]}, NotFoundError, "no track 987654"),
        ({"namespace": "catalog"}, InputError, "never go into namespace 'catalog'"),
        ({"namespace": "heldout-abc"}, InputError, "never go into namespace 'heldout-abc'"),
        ({"namespace": ""}, InputError, "1 to 64 characters"),
        ({"user": " "}, InputError, "user name is empty"),
        ({"description": "d" * 2001}, InputError, "at most 2000"),
    ],
)
def test_save_playlist_refuses_bad_input(
    catalog_engine: sa.Engine, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    a, *_ = planted(catalog_engine)
    call: dict[str, Any] = {"name": "mine", "track_ids": [a], **kwargs}
    with pytest.raises(error, match=message):
        save_playlist(catalog_engine, **call)
    assert saved_rows(catalog_engine) == []


# --------------------------------------------------------------------------- command line


def test_catalog_export_command(catalog_engine: sa.Engine, catalog_url: str, tmp_path: Path) -> None:
    a, b, _, _ = planted(catalog_engine)
    runner = CliRunner()
    env = {"RECSYS_DATABASE_URL": catalog_url}
    result = runner.invoke(app, ["catalog", "export", "mpd:1"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    check_jspf(document)
    assert document["playlist"]["title"] == "Road <trip>" and document["playlist"]["creator"] == "ana"
    assert [t["title"] for t in document["playlist"]["track"]] == [
        "Three",
        HOSTILE_TITLE,
        "Línea\nDos",
        "Four",
        HOSTILE_TITLE,
    ]

    out = tmp_path / "road.m3u"
    result = runner.invoke(app, ["catalog", "export", "mpd:1", "--format", "m3u", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    title, entries, comments = parse_m3u(out.read_text(encoding="utf-8"))
    assert title == "Road <trip>" and len(entries) == 4 and len(comments) == 1

    saved = save_playlist(catalog_engine, name="mine", track_ids=[a, b])
    result = runner.invoke(app, ["catalog", "export", str(saved), "--format", "M3U"], env=env)
    assert result.exit_code == 0 and result.output.startswith("#EXTM3U\n#PLAYLIST:mine\n")

    for args, message in [
        (["catalog", "export", "mpd:404"], "no playlist 'mpd:404' in the catalog"),
        (["catalog", "export", "mpd:1", "--format", "pls"], "unknown format 'pls': use jspf or m3u"),
        (["catalog", "export", "mpd:1", "--out", str(tmp_path / "missing" / "x.json")], "cannot write"),
        (["catalog", "export", str(2**70)], f"no playlist '{2**70}'"),
    ]:
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_saving_the_same_list_at_once_from_several_threads_makes_one_playlist(
    catalog_engine: sa.Engine,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    a, b, *_ = planted(catalog_engine)
    with ThreadPoolExecutor(4) as pool:
        ids = set(
            pool.map(
                lambda _: save_playlist(catalog_engine, name="mine", track_ids=[a, b], user="ana"), range(8)
            )
        )
    assert len(ids) == 1
    assert len(saved_rows(catalog_engine)) == 1
    assert playlist_entries(catalog_engine, namespace="saved")["track_id"].to_list() == [a, b]
