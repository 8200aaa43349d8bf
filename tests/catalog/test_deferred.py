"""Secondary indexes and foreign keys set aside for a bulk load come back exactly as the migrations made them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.ingest.mpd import ingest_mpd, should_defer
from recsys.catalog import db, deferred
from tests.ingest.test_crash import dump, schema_objects, write_corpus


def test_deferred_block_sets_aside_and_rebuilds(catalog_engine: sa.Engine) -> None:
    before = schema_objects(catalog_engine)
    expected = list(deferred.DEFERRABLE_INDEXES)
    if catalog_engine.dialect.name == "postgresql":
        expected += deferred.DEFERRABLE_FOREIGN_KEYS
    with deferred.deferred(catalog_engine) as report:
        with catalog_engine.connect() as conn:
            assert sorted(deferred.missing(conn)) == sorted(expected)
        assert sorted(report.deferred) == sorted(expected)
    assert sorted(report.rebuilt) == sorted(expected)
    with catalog_engine.connect() as conn:
        assert deferred.missing(conn) == []
    assert schema_objects(catalog_engine) == before


def test_a_failing_load_still_rebuilds(catalog_engine: sa.Engine) -> None:
    before = schema_objects(catalog_engine)
    with pytest.raises(RuntimeError, match="load failed"), deferred.deferred(catalog_engine):
        raise RuntimeError("load failed")
    assert schema_objects(catalog_engine) == before


def test_what_a_killed_load_left_is_rebuilt_by_the_next_load(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    before = schema_objects(catalog_engine)
    dropped = deferred._drop(catalog_engine)  # what a load killed before its end leaves behind
    assert "ix_playlist_track_track_id" in dropped
    with catalog_engine.connect() as conn:
        assert deferred.missing(conn)
    write_corpus(tmp_path / "slices")
    report = ingest_mpd(catalog_engine, [tmp_path / "slices"], defer_indexes=False)
    assert report.ok
    assert any("rebuilt" in m for m in report.messages), report.messages
    assert schema_objects(catalog_engine) == before


def test_deferred_and_kept_indexes_load_the_same_catalog(catalog_url: str, tmp_path: Path) -> None:
    write_corpus(tmp_path / "slices")
    results = []
    for defer in (True, False):
        url = catalog_url if defer else f"sqlite:///{tmp_path / 'kept.db'}"
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            report = ingest_mpd(engine, [tmp_path / "slices"], batch_rows=2_000, defer_indexes=defer)
            assert report.ok and report.rejected == 2
            results.append(dump(engine))
        finally:
            engine.dispose()
    assert results[0] == results[1]
    assert results[0]["playlist_track"]


def test_a_running_load_keeps_its_objects_from_other_processes(pg_engine: sa.Engine) -> None:
    db.upgrade(pg_engine)
    inside = threading.Event()
    release = threading.Event()

    def load() -> None:
        with deferred.deferred(pg_engine):
            inside.set()
            assert release.wait(30)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        assert inside.wait(30)
        assert deferred.rebuild(pg_engine) == []  # another session: the running load's lock is held
        with deferred.deferred(pg_engine) as second:
            assert second.deferred == []
        assert second.rebuilt == []
        with pg_engine.connect() as conn:
            assert "ix_playlist_track_track_id" in deferred.missing(conn)
    finally:
        release.set()
        worker.join()
    with pg_engine.connect() as conn:
        assert deferred.missing(conn) == []


def test_only_large_loads_defer(sqlite_engine: sa.Engine) -> None:
    assert not should_defer(sqlite_engine, 10_000_000)  # about 40,000 entries
    assert should_defer(sqlite_engine, 1_000_000_000)  # about 4 million entries into an empty catalog
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO playlist_track (playlist_id, position, track_id) VALUES (1, 0, 1)"))
        conn.execute(
            sa.text("UPDATE playlist_track SET rowid = 20000000")  # a catalog of about 20 million entries
        )
    assert not should_defer(sqlite_engine, 1_000_000_000)


def test_db_status_lists_what_is_set_aside(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    deferred._drop(engine)
    engine.dispose()
    monkeypatch.setenv("RECSYS_DATABASE_URL", sqlite_url)
    status = CliRunner().invoke(app, ["db", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert sorted(json.loads(status.output)["deferred"]) == sorted(deferred.DEFERRABLE_INDEXES)
    upgrade = CliRunner().invoke(app, ["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    assert "rebuilt what an interrupted bulk load had set aside" in upgrade.output
    status = CliRunner().invoke(app, ["db", "status", "--json"])
    assert json.loads(status.output)["deferred"] == []
