"""An ingest killed with SIGKILL mid-run, then run again, ends identical to a clean run.

The ingest runs as the real command (``python -m pipelines.cli ingest mpd``) in a
child process with small chunks, so there are many commits; it is killed once the
first chunk is committed. The databases are compared by natural keys (source keys,
locations, positions), never by surrogate ids or timestamps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from tests.conftest import PG_ADMIN_URL, ROOT

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FILES = 20


def uri(kind: str, n: int) -> str:
    digits = []
    for _ in range(22):
        n, r = divmod(n, 62)
        digits.append(ALPHABET[r])
    return f"spotify:{kind}:" + "".join(digits)


def write_corpus(folder: Path) -> None:
    """20 slices of 20 playlists; even files in the full schema (albums, durations), odd ones trimmed.

    Tracks recur across files, so later files add albums and durations to tracks first
    seen without them; one file holds bad records.
    """
    folder.mkdir()
    for f in range(FILES):
        playlists: list[dict[str, Any]] = []
        for i in range(20):
            pid = f * 20 + i
            tracks = []
            for pos in range(25 + pid % 11):
                n = (pid * 37 + pos * 101) % 2_500
                entry: dict[str, Any] = {
                    "artist_name": f"Artist {n % 97}" + (" feat. Guest" if n % 13 == 0 else ""),
                    "track_uri": uri("track", n),
                    "track_name": f"Song {n}" + (" - Remastered 2011" if n % 7 == 0 else ""),
                }
                if f % 2 == 0:
                    entry.update(
                        pos=pos,
                        artist_uri=uri("artist", n % 97),
                        album_uri=uri("album", n % 300),
                        album_name=f"Album {n % 300}",
                        duration_ms=100_000 + n,
                    )
                tracks.append(entry)
            playlists.append({"name": f"Mix {pid}", "pid": pid, "num_followers": pid % 5, "tracks": tracks})
        if f == 3:
            del playlists[1]["tracks"][2]["track_uri"]
            playlists[2]["tracks"] = []
        (folder / f"mpd.slice.{f:03d}.json").write_text(json.dumps({"info": {}, "playlists": playlists}))


DUMP = {
    "artist": "SELECT source_key, name, name_key, spotify_uri FROM artist",
    "album": """SELECT al.source_key, al.title, a.source_key, al.spotify_uri, al.release_year, al.album_type
                FROM album al LEFT JOIN artist a ON a.id = al.artist_id""",
    "track": """SELECT t.source_key, t.spotify_uri, t.isrc, t.title, t.title_key, a.source_key, t.artist_name,
                       al.source_key, t.duration_ms, t.year, t.recording_key
                FROM track t LEFT JOIN artist a ON a.id = t.artist_id LEFT JOIN album al ON al.id = t.album_id""",
    "track_artist": """SELECT t.source_key, ta.position, a.source_key, ta.role FROM track_artist ta
                       JOIN track t ON t.id = ta.track_id JOIN artist a ON a.id = ta.artist_id""",
    "playlist": """SELECT p.namespace, p.source_key, p.name, p.name_key, p.description, p.num_followers,
                          p.collaborative, p.num_tracks, b.location
                   FROM playlist p LEFT JOIN ingest_batch b ON b.id = p.batch_id""",
    "playlist_track": """SELECT p.source_key, pt.position, t.source_key FROM playlist_track pt
                         JOIN playlist p ON p.id = pt.playlist_id JOIN track t ON t.id = pt.track_id""",
    "ingest_batch": "SELECT source, location, checksum, status, loaded, rejected FROM ingest_batch",
    "ingest_reject": """SELECT r.reject_key, r.source, r.location, r.reason, r.raw, b.location
                        FROM ingest_reject r LEFT JOIN ingest_batch b ON b.id = r.batch_id""",
}


def dump(engine: sa.Engine, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of ``DUMP`` but ``skip``, rows sorted: comparable across databases and runs."""
    with engine.connect() as conn:
        return {
            table: sorted((tuple(r) for r in conn.execute(sa.text(q))), key=repr)
            for table, q in DUMP.items()
            if table not in skip
        }


def canonical(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = db.make_engine(url)
    try:
        return dump(engine)
    finally:
        engine.dispose()


def schema_objects(engine: sa.Engine) -> dict[str, Any]:
    """Per table, its indexes (name, columns, uniqueness), foreign keys (name, columns, target) and primary key."""
    inspector = sa.inspect(engine)
    return {
        table: (
            sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            sorted(
                (str(f["name"]), tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
        )
        for table in inspector.get_table_names()
    }


def schema_objects_at(url: str) -> dict[str, Any]:
    engine = db.make_engine(url)
    try:
        return schema_objects(engine)
    finally:
        engine.dispose()


def count_done(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT COUNT(*) FROM ingest_batch WHERE status = 'done'")).scalar_one()
            )
    finally:
        engine.dispose()


def ingest_command(url: str, folder: Path, *options: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RECSYS_DATABASE_URL": url, "RECSYS_BATCH_ROWS": "1000", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ingest", "mpd", str(folder), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def two_catalogs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh migrated catalogs of the parametrised backend: one to crash, one for a clean run."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name}" for name in ("crashed.db", "clean.db")]
    else:
        template = request.getfixturevalue("pg_template")
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        names = [f"recsys_t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        urls = [
            sa.make_url(PG_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names
        ]
    for url in urls:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
    yield urls[0], urls[1]
    if request.param != "sqlite":
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("defer", [False, True], ids=["indexes-kept", "indexes-deferred"])
@pytest.mark.parametrize("two_catalogs", ["sqlite", "postgres"], indirect=True)
def test_sigkill_mid_ingest_then_rerun_equals_clean_run(
    two_catalogs: tuple[str, str], tmp_path: Path, defer: bool
) -> None:
    """Killed while it runs (with its indexes set aside, in one variant), then run again plainly."""
    crashed, clean = two_catalogs
    folder = tmp_path / "slices"
    write_corpus(folder)

    process = ingest_command(crashed, folder, "--defer-indexes" if defer else "--keep-indexes")
    deadline = time.monotonic() + 120
    while count_done(crashed) == 0:
        assert process.poll() is None, "the ingest ended before its first commit was seen"
        assert time.monotonic() < deadline, "no chunk committed within two minutes"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    committed = count_done(crashed)
    assert 0 < committed < FILES, f"the kill came too late to test anything ({committed} of {FILES} done)"
    if defer:  # the killed load left its indexes set aside
        indexes = schema_objects_at(crashed)["playlist_track"][0]
        assert "ix_playlist_track_track_id" not in {name for name, _, _ in indexes}

    rerun = ingest_command(crashed, folder)
    output = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, output
    assert f"{committed} already ingested" in output

    engine = db.make_engine(clean)  # the clean run, in this process, with other chunk boundaries
    try:
        report = ingest_mpd(engine, [folder], batch_rows=5_000)
    finally:
        engine.dispose()
    assert report.inputs == FILES and report.rejected == 2

    expected = canonical(clean)
    assert len(expected["playlist"]) == FILES * 20 - 1  # the empty playlist is rejected
    assert len(expected["ingest_reject"]) == 2
    assert all(expected[table] for table in ("album", "track_artist", "playlist_track"))
    got = canonical(crashed)
    for table in DUMP:
        assert got[table] == expected[table], table
    assert schema_objects_at(crashed) == schema_objects_at(clean)


@pytest.mark.parametrize("stage", ["_merge_dimensions", "_merge_facts"])
@pytest.mark.parametrize("two_catalogs", ["sqlite", "postgres"], indirect=True)
def test_a_failed_merge_stops_the_load_at_its_chunk(
    two_catalogs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """The chunks before the failing one are done, none after it is, its own error is raised;
    the load run again ends equal to a clean run."""
    import pipelines.ingest.mpd as mpd

    failing, clean = two_catalogs
    folder = tmp_path / "slices"
    write_corpus(folder)
    merge = getattr(mpd, stage)
    calls = 0

    def fail_third(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("planted failure")
        return merge(*args)

    engine = db.make_engine(failing)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(mpd, stage, fail_third)
            with pytest.raises(RuntimeError, match="planted failure"):
                ingest_mpd(engine, [folder], batch_rows=1_000, defer_indexes=False)
        assert calls == 3  # the chunks queued behind the failure were not merged
        assert count_done(failing) == 4  # two chunks of two slices each
        report = ingest_mpd(engine, [folder], batch_rows=1_000)
        assert report.skipped == 4 and report.inputs == FILES
    finally:
        engine.dispose()
    engine = db.make_engine(clean)
    try:
        ingest_mpd(engine, [folder], batch_rows=5_000)
    finally:
        engine.dispose()
    expected, got = canonical(clean), canonical(failing)
    for table in DUMP:
        assert got[table] == expected[table], table
