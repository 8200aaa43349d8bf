"""Runs of jobs (``pipeline_run``): who runs each one, how it ended, and runs whose process died.

Every job records its run through :func:`start_run` (with the host and process id
that run it, and a start time from this machine's clock) and ends it with
:func:`finish_run` or :func:`fail_run`. A process killed with SIGKILL, or a machine
that lost power, cannot end its run, which would then read ``running`` forever, so
the next run's :func:`start_run` and ``recsys db status`` call :func:`reap_stale_runs`:

- a run of this host whose process is gone is marked ``killed``. Process ids are
  reused, so a process that has the run's id but started after the run began
  (``/proc/<pid>/stat``, to within :data:`START_SLACK`) is another process, and the
  run's own is gone too;
- a run of another host is left alone (its process cannot be seen from here) unless
  it started more than :data:`OTHER_HOST_BOUND` ago (7 days), when it is taken as
  killed. Runs recorded before hosts were, without a host or process, count as
  another host's.

A run of several steps (the nightly pipeline) records each in ``pipeline_step``
(:func:`start_step`, :func:`end_step`) with a fingerprint of its inputs;
:func:`last_success` finds the step's last successful inputs, and :func:`history`
reads runs with their steps back, newest first.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from recsys.catalog.schema import PipelineRun, PipelineStep

NIGHTLY = "nightly"  # the job name of the nightly pipeline's runs
OTHER_HOST_BOUND = timedelta(days=7)
START_SLACK = timedelta(seconds=2)  # clock ticks and the boot time's whole seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One row of ``pipeline_run``, as status reports show it."""

    id: int
    job: str
    status: str
    host: str | None
    pid: int | None
    started_at: datetime
    error: str | None = None

    def describe(self) -> str:
        owner = f"process {self.pid} on {self.host}" if self.host and self.pid else "an unknown process"
        return f"run {self.id} ({self.job}, {owner}, started {self.started_at:%Y-%m-%d %H:%M:%S} UTC)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "status": self.status,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "error": self.error,
        }


@dataclass(frozen=True)
class Step:
    """One row of ``pipeline_step``."""

    step: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None
    fingerprint: str | None

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        seconds = self.seconds
        return {
            "step": self.step,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "seconds": None if seconds is None else round(seconds, 3),
            "counts": self.counts,
            "metrics": self.metrics,
            "error": self.error,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class RunRecord:
    """A run as history shows it: the run, its outcome and its steps in order."""

    run: Run
    finished_at: datetime | None
    counts: dict[str, Any]
    metrics: dict[str, Any]
    steps: list[Step]

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.run.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        seconds = self.seconds
        return {
            **self.run.as_dict(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "seconds": None if seconds is None else round(seconds, 3),
            "counts": self.counts,
            "metrics": self.metrics,
            "steps": [step.as_dict() for step in self.steps],
        }


def counts_text(counts: dict[str, Any]) -> str:
    """A step's counts as a person reads them: ``inputs 619, skipped 612, new 7`` (nested ones left out)."""
    return ", ".join(f"{key} {value}" for key, value in counts.items() if not isinstance(value, dict))


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def start_run(conn: Connection, job: str, params: dict[str, Any] | None = None) -> int:
    """Record a run of ``job`` by this process (marking runs whose process died first); returns its id."""
    reap_stale_runs(conn)
    run_id = conn.execute(
        sa.insert(PipelineRun)
        .values(
            job=job,
            status="running",
            params=params,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=datetime.now(UTC),
        )
        .returning(PipelineRun.id)
    ).scalar_one()
    log.debug("run %d (%s) started by process %d on %s", run_id, job, os.getpid(), socket.gethostname())
    return int(run_id)


def finish_run(conn: Connection, run_id: int, **values: Any) -> None:
    """Mark the run done, with whatever else is given (``counts``, ``metrics``)."""
    _end(conn, run_id, "done", values)


def fail_run(conn: Connection, run_id: int, error: str, **values: Any) -> None:
    """Mark the run failed with ``error`` (cut to 2,000 characters)."""
    _end(conn, run_id, "failed", {**values, "error": error[:2000]})


def _end(conn: Connection, run_id: int, status: str, values: dict[str, Any]) -> None:
    conn.execute(
        sa.update(PipelineRun)
        .where(PipelineRun.id == run_id)
        .values(status=status, finished_at=datetime.now(UTC), **values)
    )
    log.debug("run %d %s", run_id, status)


def running_runs(conn: Connection) -> list[Run]:
    """The runs still marked running, oldest first."""
    t = PipelineRun.__table__.c
    rows = conn.execute(
        sa.select(t.id, t.job, t.status, t.host, t.pid, t.started_at, t.error)
        .where(t.status == "running")
        .order_by(t.id)
    )
    return [Run(r.id, r.job, r.status, r.host, r.pid, _utc(r.started_at), r.error) for r in rows]


def reap_stale_runs(conn: Connection, *, now: datetime | None = None) -> list[Run]:
    """Mark ``killed`` every running run whose process is gone (see the module docstring); returns them."""
    now = now or datetime.now(UTC)
    here, me = socket.gethostname(), os.getpid()
    reaped = []
    for run in running_runs(conn):
        why = _why_gone(run, here, now)
        if why is None:
            continue
        error = f"{run.describe()}: {why}; taken as killed by process {me} on {here}"
        marked = conn.execute(
            sa.update(PipelineRun)
            .where(PipelineRun.id == run.id, PipelineRun.status == "running")
            .values(status="killed", finished_at=now, error=error)
        ).rowcount
        if marked:
            conn.execute(  # its steps that were going end with it
                sa.update(PipelineStep)
                .where(PipelineStep.run_id == run.id, PipelineStep.status == "running")
                .values(status="killed", finished_at=now, error=error[:2000])
            )
            log.info("%s", error)
            reaped.append(Run(run.id, run.job, "killed", run.host, run.pid, run.started_at, error))
    return reaped


def _why_gone(run: Run, here: str, now: datetime) -> str | None:
    """Why the run's process is gone, or None while it may still be running."""
    if run.host != here or run.pid is None:
        if now - run.started_at > OTHER_HOST_BOUND:
            return f"not ended in {(now - run.started_at).days} days (its host cannot be checked from here)"
        return None
    started = process_start(run.pid)
    if started is None:
        return f"process {run.pid} on {here} is gone"
    if started > run.started_at + START_SLACK:
        return (
            f"process {run.pid} on {here} is gone (that id now belongs to a process started "
            f"{started:%Y-%m-%d %H:%M:%S} UTC, after the run began)"
        )
    return None


def process_start(pid: int) -> datetime | None:
    """When process ``pid`` of this host started; None when there is no such (living) process.

    Reads ``/proc``; where there is none, a living process counts as started long ago.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        return _without_proc(pid)
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in (proc / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    # Fields after the command name (which may hold spaces or parentheses): state is the first,
    # start time (in clock ticks after boot) the 20th.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # a zombie: killed, not yet waited for
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(boot + int(fields[19]) / ticks, UTC)


def _without_proc(pid: int) -> datetime | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return datetime.min.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- steps


def start_step(conn: Connection, run_id: int, step: str, fingerprint: str | None) -> int:
    """Record that ``step`` of run ``run_id`` starts, over inputs digested as ``fingerprint``; returns its id."""
    step_id = conn.execute(
        sa.insert(PipelineStep)
        .values(
            run_id=run_id, step=step, status="running", fingerprint=fingerprint, started_at=datetime.now(UTC)
        )
        .returning(PipelineStep.id)
    ).scalar_one()
    return int(step_id)


def end_step(
    conn: Connection,
    step_id: int,
    status: str,
    *,
    counts: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """End a step: ``done``, ``skipped`` or ``failed`` (``error`` cut to 2,000 characters)."""
    conn.execute(
        sa.update(PipelineStep)
        .where(PipelineStep.id == step_id)
        .values(
            status=status,
            finished_at=datetime.now(UTC),
            counts=counts or {},
            metrics=metrics or {},
            error=None if error is None else error[:2000],
        )
    )


def last_success(conn: Connection, job: str, step: str) -> Step | None:
    """The last step of this name that ended ``done`` in a run of ``job``, or None."""
    s, r = PipelineStep.__table__.c, PipelineRun.__table__.c
    row = conn.execute(
        sa.select(s.step, s.status, s.started_at, s.finished_at, s.counts, s.metrics, s.error, s.fingerprint)
        .join(PipelineRun.__table__, r.id == s.run_id)
        .where(r.job == job, s.step == step, s.status == "done")
        .order_by(s.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _step(row)


def _step(row: Any) -> Step:
    return Step(
        step=row.step,
        status=row.status,
        started_at=_utc(row.started_at),
        finished_at=None if row.finished_at is None else _utc(row.finished_at),
        counts=dict(row.counts or {}),
        metrics=dict(row.metrics or {}),
        error=row.error,
        fingerprint=row.fingerprint,
    )


def history(conn: Connection, job: str, *, n: int = 20, status: str | None = None) -> list[RunRecord]:
    """The last ``n`` runs of ``job`` (with ``status``, if given) with their steps, newest first."""
    r, s = PipelineRun.__table__.c, PipelineStep.__table__.c
    query = sa.select(
        r.id, r.job, r.status, r.host, r.pid, r.started_at, r.error, r.finished_at, r.counts, r.metrics
    ).where(r.job == job)
    if status is not None:
        query = query.where(r.status == status)
    rows = conn.execute(query.order_by(r.id.desc()).limit(n)).all()
    if not rows:
        return []
    steps: dict[int, list[Step]] = {int(row.id): [] for row in rows}
    for row in conn.execute(
        sa.select(
            s.run_id,
            s.step,
            s.status,
            s.started_at,
            s.finished_at,
            s.counts,
            s.metrics,
            s.error,
            s.fingerprint,
        )
        .where(s.run_id.in_(list(steps)))
        .order_by(s.id)
    ):
        steps[int(row.run_id)].append(_step(row))
    return [
        RunRecord(
            run=Run(row.id, row.job, row.status, row.host, row.pid, _utc(row.started_at), row.error),
            finished_at=None if row.finished_at is None else _utc(row.finished_at),
            counts=dict(row.counts or {}),
            metrics=dict(row.metrics or {}),
            steps=steps[int(row.id)],
        )
        for row in rows
    ]


def last_run(conn: Connection, job: str, *, status: str | None = None) -> RunRecord | None:
    """The newest run of ``job`` (with ``status``, if given), with its steps."""
    found = history(conn, job, n=1, status=status)
    return found[0] if found else None
