"""One nightly run at a time, on SQLite and PostgreSQL: a second run exits at once naming the first,
and a holder that dies leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from pipelines.nightly.config import NightlyConfig
from pipelines.nightly.runner import NightlyResult, run_nightly
from pipelines.nightly.steps import Context, Outcome, Step
from recsys.catalog import db, runs
from recsys.config import load_settings
from recsys.errors import LockedError
from tests.cli.child import child_env, command


def _holding(started: threading.Event, release: threading.Event) -> Step:
    def hold(ctx: Context) -> Outcome:
        started.set()
        assert release.wait(120), "the test never released the run"
        return Outcome(counts={"held": 1})

    return Step("hold", lambda c: "always", lambda ctx: None, lambda ctx: str(time.time()), hold)


def test_a_second_run_exits_at_once_with_one_line_naming_the_first(catalog_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(catalog_url)
    db.upgrade(engine)
    settings = load_settings(data_dir=tmp_path / "data", database_url=catalog_url)
    settings.ensure_data_dir()
    started, release = threading.Event(), threading.Event()
    done: list[NightlyResult] = []
    first = threading.Thread(
        target=lambda: done.append(
            run_nightly(settings, engine, NightlyConfig(), steps=(_holding(started, release),))
        )
    )
    first.start()
    try:
        assert started.wait(60)
        env = child_env({"RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_DATABASE_URL": catalog_url})
        clock = time.monotonic()
        second = subprocess.run(command("nightly"), env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - clock
    finally:
        release.set()
        first.join(60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    with engine.connect() as conn:
        record = runs.last_run(conn, "nightly")
    assert record is not None and done and record.run.id == done[0].run_id and record.run.status == "done"
    assert lines[0] == f"error: a nightly run is going: {record.run.describe()}"
    assert f"process {os.getpid()} on " in lines[0] and " started " in lines[0]
    assert seconds < 30  # the interpreter's start and imports; the lock itself does not wait
    with engine.connect() as conn:
        assert len(runs.history(conn, "nightly")) == 1  # the refused run recorded nothing
    engine.dispose()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pipelines.nightly.lock import nightly_lock
    from recsys.catalog import db, runs
    engine = db.make_engine(sys.argv[1])
    with nightly_lock(engine):
        with engine.begin() as conn:
            runs.start_run(conn, "nightly")
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_holder_killed_with_sigkill_leaves_no_lock(catalog_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(catalog_url)
    db.upgrade(engine)
    settings = load_settings(data_dir=tmp_path / "data", database_url=catalog_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, catalog_url], env=child_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
    deadline = time.monotonic() + 10  # the server notices the closed connection at once; allow a moment
    while True:
        try:
            result = run_nightly(settings, engine, NightlyConfig(), steps=())
            break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with engine.connect() as conn:
        statuses = conn.execute(
            sa.text("SELECT id, status FROM pipeline_run WHERE job = 'nightly' ORDER BY id")
        ).all()
    assert [s for _, s in statuses] == ["killed", "done"] and statuses[-1][0] == result.run_id
    engine.dispose()
