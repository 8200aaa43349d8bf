"""A PostgreSQL catalog locked by another session: the command ends after the lock timeout, in one line, exit 1.

A second connection holds ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE`` (what a bulk
load, an index rebuild or a migration may hold for minutes) while the real command
runs in a child process with ``RECSYS_PG_LOCK_TIMEOUT_S=1``. Without a timeout the
command waited for ever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from recsys.catalog import db
from recsys.errors import LockedError
from tests.cli.child import one_line_error, recsys
from tests.ingest.test_crash import write_corpus


def plain(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def locked(pg_url: str) -> Iterator[psycopg.Connection]:
    """Another session holding the track table until the test rolls it back."""
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    engine.dispose()
    holder = psycopg.connect(plain(pg_url))
    holder.execute("LOCK TABLE track IN ACCESS EXCLUSIVE MODE")
    yield holder
    holder.rollback()
    holder.close()


def counts(url: str) -> tuple[int, ...]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                """SELECT (SELECT count(*) FROM track), (SELECT count(*) FROM artist),
                          (SELECT count(*) FROM playlist), (SELECT count(*) FROM playlist_track)"""
            )
        ).one()
    engine.dispose()
    return tuple(found)


@pytest.mark.parametrize("command", ["table", "mpd"])
def test_an_ingest_blocked_by_another_session_ends_in_one_line(
    pg_url: str, locked: psycopg.Connection, tmp_path: Path, command: str
) -> None:
    if command == "table":
        path = tmp_path / "tracks.csv"
        path.write_text("id,title,artist\nx1,One,Band\nx2,Two,Band\n", encoding="utf-8")
        args = ["ingest", "table", str(path), "--kind", "tracks"]
    else:
        write_corpus(tmp_path / "slices")
        args = ["ingest", "mpd", str(tmp_path / "slices")]
    env = {"RECSYS_DATABASE_URL": pg_url, "RECSYS_PG_LOCK_TIMEOUT_S": "1"}

    line = one_line_error(recsys(*args, env=env, timeout=120))

    name = sa.make_url(pg_url).database
    assert line.startswith("error: catalog database postgresql+psycopg://") and f"/{name} is busy" in line
    assert "for more than 1 s (RECSYS_PG_LOCK_TIMEOUT_S)" in line
    locked.rollback()  # the other session is done
    assert counts(pg_url) == (0, 0, 0, 0)  # nothing half-written

    again = recsys(*args, "--json", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded"]
    assert counts(pg_url)[0] > 0


def test_a_write_transaction_that_waits_out_the_timeout_is_rolled_back(
    pg_url: str, locked: psycopg.Connection
) -> None:
    engine = db.make_engine(pg_url, lock_timeout_s=0.2)
    insert = sa.text("INSERT INTO artist (source_key, name, name_key) VALUES ('k', 'A', 'a')")
    with (
        pytest.raises(LockedError, match=r"is busy: .* more than 0\.2 s"),
        db.write_transaction(engine) as conn,
    ):
        conn.execute(insert)
        conn.execute(sa.text("SELECT count(*) FROM track"))
    # A COPY sent straight to the driver waits out the same timeout.
    with pytest.raises(LockedError, match="is busy"), db.write_transaction(engine) as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy("COPY track (source_key) TO STDOUT") as copy:
            list(copy)
    locked.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM artist")).scalar_one() == 0
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "200ms"
    engine.dispose()
