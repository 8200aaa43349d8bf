"""A job killed with SIGKILL does not leave its run ``running`` forever (SQLite and PostgreSQL).

The job is the real audio embedding job in a child process, killed once its run is
recorded and its first batch is written; ``recsys db status`` (a child process too)
or the next run then marks that run ``killed``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.demo.audio import DemoAudioConfig, generate_demo_audio, register_demo_audio
from pipelines.embed.audio import embed_audio
from recsys.catalog import runs
from recsys.catalog.schema import PipelineRun
from recsys.embedders.dsp_audio import DspAudioEmbedder
from recsys.vectorstore.client import ClientStore
from tests.cli.child import child_env, recsys
from tests.conftest import ROOT

# The embedding job, stopped for good after its first batch (until it is killed).
JOB = """
import sys, time
from pipelines.embed.audio import embed_audio
from recsys.catalog import db
from recsys.embedders.dsp_audio import DspAudioEmbedder
from recsys.vectorstore.client import ClientStore

def hold(batch):
    print("first batch written", flush=True)
    time.sleep(600)

embed_audio(
    db.make_engine(sys.argv[1]), ClientStore(":memory:"), DspAudioEmbedder(), batch_size=1, on_batch=hold,
    commit_every_s=0,  # each batch written as it is done
)
"""


@pytest.fixture
def audio_catalog(catalog_engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    clips = generate_demo_audio(tmp_path / "audio", DemoAudioConfig(clips_per_style=1, seconds=1.0))
    register_demo_audio(catalog_engine, clips)
    return catalog_engine


def kill_a_running_job(url: str) -> int:
    """Start the job in a child process, SIGKILL it once it has written a batch; returns its pid."""
    child = subprocess.Popen(
        [sys.executable, "-c", JOB, url], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "first batch written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return child.pid


def run_rows(engine: sa.Engine) -> list[sa.Row]:
    t = PipelineRun.__table__.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.id, t.status, t.host, t.pid, t.error).order_by(t.id)))


@pytest.mark.slow
def test_db_status_marks_the_run_of_a_killed_job(audio_catalog: sa.Engine, catalog_url: str) -> None:
    pid = kill_a_running_job(catalog_url)
    [row] = run_rows(audio_catalog)
    assert (row.status, row.host, row.pid) == ("running", socket.gethostname(), pid)

    status = recsys("db", "status", "--json", env={"RECSYS_DATABASE_URL": catalog_url})
    assert status.returncode == 0, status.stderr
    killed = json.loads(status.stdout)["runs"]["killed"]
    assert [r["id"] for r in killed] == [row.id]
    [row] = run_rows(audio_catalog)
    assert row.status == "killed"
    assert f"process {pid} on {socket.gethostname()} is gone" in row.error

    again = recsys("db", "status", env={"RECSYS_DATABASE_URL": catalog_url})
    assert again.returncode == 0 and "marked killed" not in again.stdout and "running:" not in again.stdout


@pytest.mark.slow
def test_the_next_run_marks_the_run_of_a_killed_job(audio_catalog: sa.Engine, catalog_url: str) -> None:
    kill_a_running_job(catalog_url)
    report = embed_audio(audio_catalog, ClientStore(":memory:"), DspAudioEmbedder(), batch_size=2)
    assert report.embedded == 3  # the killed run wrote the first of the four clips
    rows = run_rows(audio_catalog)
    assert [r.status for r in rows] == ["killed", "done"]
    assert rows[1].pid == os.getpid() and "taken as killed" in rows[0].error


def test_runs_still_going_or_out_of_sight_are_left_alone(catalog_engine: sa.Engine, catalog_url: str) -> None:
    here, now = socket.gethostname(), datetime.now(UTC)
    mine = runs.process_start(os.getpid())
    assert mine is not None and mine < now
    planted = {
        "alive here": (here, os.getpid(), now),
        "another host, recent": ("elsewhere", 4242, now - timedelta(days=1)),
        "another host, too old": ("elsewhere", 4242, now - timedelta(days=8)),
        "pid reused": (here, os.getpid(), mine - timedelta(hours=1)),  # this process started after the run
        "no owner, too old": (None, None, now - timedelta(days=30)),
    }
    ids = {}
    with catalog_engine.begin() as conn:
        for job, (host, pid, started) in planted.items():
            ids[job] = conn.execute(
                sa.insert(PipelineRun)
                .values(job=job, status="running", host=host, pid=pid, started_at=started)
                .returning(PipelineRun.id)
            ).scalar_one()

    status = recsys("db", "status", env={"RECSYS_DATABASE_URL": catalog_url})
    assert status.returncode == 0, status.stderr
    running = [line for line in status.stdout.splitlines() if line.startswith("running: ")]
    marked = [line for line in status.stdout.splitlines() if line.startswith("marked killed: ")]
    assert [line.split("(")[1].split(",")[0] for line in running] == ["alive here", "another host"]
    assert (
        len(marked) == 3 and "not ended in 8 days" in status.stdout and "after the run began" in status.stdout
    )
    statuses = {r.id: r.status for r in run_rows(catalog_engine)}
    assert {job: statuses[i] for job, i in ids.items()} == {
        "alive here": "running",
        "another host, recent": "running",
        "another host, too old": "killed",
        "pid reused": "killed",
        "no owner, too old": "killed",
    }
    with catalog_engine.begin() as conn:
        assert runs.reap_stale_runs(conn) == []  # nothing more to mark
