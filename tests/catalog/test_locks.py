"""A busy or unreachable catalog is one line naming the database, exit 1; a lock released in time is waited out.

Another writer holds the SQLite catalog's write lock (``BEGIN EXCLUSIVE``, as a
rebuild of indexes holds it for minutes) while the real ``recsys ingest mpd`` runs in
a child process with a short busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from recsys.catalog import db
from recsys.errors import LockedError
from tests.cli.child import child_env, command, one_line_error, recsys
from tests.conftest import ROOT
from tests.ingest.test_crash import write_corpus


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    write_corpus(tmp_path / "slices")
    return path


@pytest.fixture
def held(sqlite_file: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the catalog's write lock until the test commits it."""
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def playlists(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM playlist").fetchone()[0])


def test_a_busy_sqlite_catalog_is_one_line_naming_it(
    sqlite_file: Path, held: sqlite3.Connection, tmp_path: Path
) -> None:
    env = {
        "RECSYS_DATABASE_URL": f"sqlite:///{sqlite_file}",
        "RECSYS_SQLITE_BUSY_TIMEOUT_S": "0.2",
        "RECSYS_SQLITE_LOCK_RETRIES": "1",
    }
    result = recsys("ingest", "mpd", str(tmp_path / "slices"), env=env)
    line = one_line_error(result)
    assert str(sqlite_file) in line and "is busy" in line
    assert "RECSYS_SQLITE_BUSY_TIMEOUT_S" in line and "tried 2 times" in line
    held.execute("ROLLBACK")
    assert playlists(sqlite_file) == 0  # nothing half-written

    again = recsys("ingest", "mpd", str(tmp_path / "slices"), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded"]["playlists"] == playlists(sqlite_file) > 0


def test_a_lock_released_within_the_retries_is_waited_out(
    sqlite_file: Path, held: sqlite3.Connection, tmp_path: Path
) -> None:
    env = {
        "RECSYS_DATABASE_URL": f"sqlite:///{sqlite_file}",
        "RECSYS_SQLITE_BUSY_TIMEOUT_S": "0.2",
        "RECSYS_SQLITE_LOCK_RETRIES": "6",
    }
    child = subprocess.Popen(
        command("--verbose", "ingest", "mpd", str(tmp_path / "slices"), "--json"),
        cwd=ROOT,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    seen = []
    for line in child.stderr:  # the command says when it found the catalog busy and will start again
        seen.append(line)
        if "is busy: starting the transaction again" in line:
            break
    held.execute("COMMIT")  # the other writer is done
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, "".join(seen) + err
    assert json.loads(out)["loaded"]["playlists"] == playlists(sqlite_file) > 0
    assert "Traceback" not in err


def test_write_transaction_gives_up_with_a_named_error(sqlite_file: Path, held: sqlite3.Connection) -> None:
    engine = db.make_engine(f"sqlite:///{sqlite_file}", busy_timeout_s=0.05, lock_retries=2)
    pauses: list[float] = []
    with (
        pytest.raises(LockedError, match=r"is busy: .* \(tried 3 times"),
        db.write_transaction(engine, sleep=pauses.append) as conn,
    ):
        conn.execute(sa.text("DELETE FROM playlist"))
    assert pauses == [1.0, 2.0]
    engine.dispose()


def test_write_transaction_waits_out_a_lock_released_in_time(
    sqlite_file: Path, held: sqlite3.Connection
) -> None:
    engine = db.make_engine(f"sqlite:///{sqlite_file}", busy_timeout_s=0.05, lock_retries=2)

    def other_writer_finishes(pause: float) -> None:
        assert pause == 1.0  # the first wait
        held.execute("COMMIT")

    with db.write_transaction(engine, sleep=other_writer_finishes) as conn:
        conn.execute(sa.text("INSERT INTO artist (source_key, name, name_key) VALUES ('k', 'A', 'a')"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM artist")).scalar_one() == 1
    engine.dispose()


def test_write_transaction_commits_and_rolls_back(catalog_engine: sa.Engine) -> None:
    insert = sa.text("INSERT INTO artist (source_key, name, name_key) VALUES (:k, 'A', 'a')")
    with db.write_transaction(catalog_engine) as conn:
        conn.execute(insert, {"k": "kept"})
    with pytest.raises(RuntimeError), db.write_transaction(catalog_engine) as conn:
        conn.execute(insert, {"k": "dropped"})
        raise RuntimeError
    with catalog_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT source_key FROM artist")).scalars().all() == ["kept"]


def test_an_unreachable_postgres_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://postgres:secret-pw@127.0.0.1:1/catalog"
    for args in (["catalog", "stats"], ["db", "status"], ["db", "upgrade"]):
        line = one_line_error(
            recsys(*args, env={"RECSYS_DATABASE_URL": url, "RECSYS_DATA_DIR": str(tmp_path)})
        )
        assert line.startswith(
            "error: cannot reach the catalog database at postgresql+psycopg://postgres:***@"
        )
        assert "secret-pw" not in line
