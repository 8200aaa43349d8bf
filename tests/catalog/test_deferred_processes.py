"""A plain ingest and ``recsys db upgrade`` leave alone what a running load set aside, in another process.

The deferring load runs in a child process and holds its indexes set aside until it
is told to end or is killed; the plain ingest, ``db upgrade`` and ``db status`` are the
real command in other child processes. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from recsys.catalog import deferred
from tests.cli.child import child_env, recsys
from tests.conftest import ROOT
from tests.ingest.test_crash import write_corpus

# A bulk load's lifetime with its indexes set aside: it ends when its stdin closes.
LOAD = """
import sys
from recsys.catalog import db, deferred

with deferred.deferred(db.make_engine(sys.argv[1])) as report:
    print(",".join(report.deferred), flush=True)
    sys.stdin.read()
"""


def start_load(url: str) -> tuple[subprocess.Popen[str], list[str]]:
    load = subprocess.Popen(
        [sys.executable, "-c", LOAD, url],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None
    return load, load.stdout.readline().strip().split(",")


def missing(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return deferred.missing(conn)


def test_a_plain_ingest_leaves_a_running_loads_indexes_aside(
    catalog_engine: sa.Engine, catalog_url: str, tmp_path: Path
) -> None:
    write_corpus(tmp_path / "slices")
    env = {"RECSYS_DATABASE_URL": catalog_url}
    load, set_aside = start_load(catalog_url)
    try:
        assert "ix_playlist_track_track_id" in set_aside
        assert sorted(missing(catalog_engine)) == sorted(set_aside)

        ingest = recsys("ingest", "mpd", str(tmp_path / "slices"), "--keep-indexes", "--json", env=env)
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)["loaded"]["playlists"] > 0
        upgrade = recsys("db", "upgrade", env=env)
        assert upgrade.returncode == 0 and "rebuilt" not in upgrade.stdout, upgrade.stdout + upgrade.stderr
        assert sorted(missing(catalog_engine)) == sorted(set_aside)  # still aside: the load holds them
        status = recsys("db", "status", "--json", env=env)
        assert json.loads(status.stdout)["deferred_by_running_load"] is True
        assert "set aside by a bulk load running now" in recsys("db", "status", env=env).stdout
    finally:
        load.send_signal(signal.SIGKILL)  # the load dies without rebuilding anything
        load.wait()

    assert sorted(missing(catalog_engine)) == sorted(set_aside)
    status = recsys("db", "status", env=env)
    assert "set aside by an interrupted bulk load" in status.stdout, status.stdout
    upgrade = recsys("db", "upgrade", env=env)
    assert upgrade.returncode == 0 and "rebuilt what an interrupted bulk load had set aside" in upgrade.stdout
    assert missing(catalog_engine) == []


def test_a_load_that_ends_rebuilds_and_the_next_plain_ingest_finds_nothing_to_do(
    catalog_engine: sa.Engine, catalog_url: str, tmp_path: Path
) -> None:
    load, set_aside = start_load(catalog_url)
    assert set_aside and missing(catalog_engine)
    assert load.communicate(input="", timeout=120)[0] == ""  # stdin closed: the load ends and rebuilds
    assert load.returncode == 0
    assert missing(catalog_engine) == []
    write_corpus(tmp_path / "slices")
    ingest = recsys("ingest", "mpd", str(tmp_path / "slices"), env={"RECSYS_DATABASE_URL": catalog_url})
    assert ingest.returncode == 0 and "rebuilt" not in ingest.stderr + ingest.stdout
