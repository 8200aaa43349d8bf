"""Hostile audio folders: tags past the name limit, paths no index holds; each costs a reject row, the rest lands."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from pipelines.ingest.audio_dir import ingest_audio_dir
from pipelines.ingest.guards import MAX_LOCATION_BYTES, InputLimits
from tests.ingest.test_audio_dir import rows, tone
from tests.ingest.test_hostile_mpd import noise


def test_long_tags_are_cut_with_a_reject_row_under_the_setting(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    title = noise(3_000, 1)
    tone(folder / "a.flac", 1.0, title=title, artist="The Painters", album="A" * 150)
    tone(folder / "b.flac", 1.0, title="Blue Song", artist="The Painters")

    report = ingest_audio_dir(catalog_engine, folder, limits=InputLimits(max_name_chars=100))

    assert report.ok and report.loaded["audio_assets"] == 2
    titles = sorted(r[0] for r in rows(catalog_engine, "SELECT title FROM track"))
    assert titles == sorted(["Blue Song", title[:100]])
    tags = [
        json.loads(t) if isinstance(t, str) else t
        for (t,) in rows(catalog_engine, "SELECT tags FROM audio_asset")
    ]
    assert sorted(len(t["title"]) for t in tags) == [9, 100]
    batch = rows(catalog_engine, "SELECT id FROM ingest_batch")[0][0]
    found = rows(catalog_engine, "SELECT location, reason, batch_id FROM ingest_reject ORDER BY reason")
    assert found == [
        (
            str((folder / "a.flac").resolve()),
            "tag album of 150 characters cut to 100 (RECSYS_MAX_NAME_CHARS)",
            batch,
        ),
        (
            str((folder / "a.flac").resolve()),
            "tag title of 3,000 characters cut to 100 (RECSYS_MAX_NAME_CHARS)",
            batch,
        ),
    ]


def test_a_file_name_taken_for_a_title_is_cut_with_a_reject_row(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    """A file name becomes the title of an untagged file: a name longer than the limit is cut with a reject."""
    folder = tmp_path / "music"
    folder.mkdir()
    tone(folder / f"{'n' * 120}.flac", 1.0)

    report = ingest_audio_dir(catalog_engine, folder, limits=InputLimits(max_name_chars=50))

    assert report.ok
    assert rows(catalog_engine, "SELECT title FROM track") == [("n" * 50,)]
    assert rows(catalog_engine, "SELECT reason FROM ingest_reject") == [
        ("title of 120 characters cut to 50 (RECSYS_MAX_NAME_CHARS)",)
    ]


def test_a_path_no_index_holds_is_rejected_and_the_others_land(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "music"
    deep = folder
    for level in range(12):  # about 3,000 bytes of path: more than a PostgreSQL index entry holds
        deep = deep / noise(250, 100 + level)
    deep.mkdir(parents=True)
    far = tone(folder / "far.flac", 1.0, title="Far", artist="Band").rename(deep / "far.flac")  # libsndfile
    # itself opens no path of more than a few hundred bytes
    tone(folder / "near.flac", 1.0, title="Near", artist="Band")
    assert len(str(far.resolve()).encode()) > MAX_LOCATION_BYTES

    report = ingest_audio_dir(catalog_engine, folder)

    assert report.ok and report.loaded["audio_assets"] == 1
    assert rows(catalog_engine, "SELECT title FROM track") == [("Near",)]
    [(location, reason)] = rows(catalog_engine, "SELECT location, reason FROM ingest_reject")
    assert location == str(far.resolve())
    size = len(location.encode())
    assert (
        reason
        == f"a path of {size:,} bytes, longer than the 2,048 an input's location may hold (no index holds it)"
    )


def test_the_commands_read_the_name_limit_setting(tmp_path: Path) -> None:
    """RECSYS_MAX_NAME_CHARS, set for the real commands: each cuts at it, with a reject row."""
    from tests.cli.child import recsys

    data = tmp_path / "data"
    env = {"RECSYS_DATA_DIR": str(data), "RECSYS_MAX_NAME_CHARS": "12"}
    assert recsys("db", "upgrade", env=env).returncode == 0
    tracks = tmp_path / "tracks.csv"
    tracks.write_text("id,title,artist\nx1,A Title Of Thirty Characters!,Band\n", encoding="utf-8")
    listens = tmp_path / "listens.csv"
    listens.write_text("user,artist\nu1,An Artist Named At Length\n", encoding="utf-8")
    music = tmp_path / "music"
    music.mkdir()
    tone(music / "a.flac", 1.0, title="A Tagged Title Of Some Length", artist="Band")

    for args in (
        ["ingest", "table", str(tracks), "--kind", "tracks"],
        ["ingest", "listens", str(listens), "--format", "csv"],
        ["ingest", "audio-dir", str(music)],
    ):
        result = recsys(*args, env=env)
        assert result.returncode == 0, result.stderr

    engine = sa.create_engine(f"sqlite:///{data / 'catalog.db'}")
    try:
        assert sorted(r[0] for r in rows(engine, "SELECT title FROM track")) == [
            "A Tagged Tit",
            "A Title Of T",
        ]
        assert rows(engine, "SELECT name FROM artist WHERE source_key LIKE 'name:an artist%'") == [
            ("An Artist Na",)
        ]
        reasons = sorted(r[0] for r in rows(engine, "SELECT reason FROM ingest_reject"))
        assert reasons == [
            "name of 25 characters cut to 12 (RECSYS_MAX_NAME_CHARS)",
            "tag title of 29 characters cut to 12 (RECSYS_MAX_NAME_CHARS)",
            "title of 29 characters cut to 12 (RECSYS_MAX_NAME_CHARS)",
        ]
    finally:
        engine.dispose()
