"""What the nightly pipeline did and what it would do: history and status, for the CLI and the UI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from pipelines.nightly.config import NightlyConfig
from pipelines.nightly.gate import JOB
from pipelines.nightly.runner import STEPS, waiting
from pipelines.nightly.steps import Context
from recsys.catalog import runs
from recsys.config import Settings
from recsys.errors import RecsysError


def run_history(engine: Engine, *, n: int = 20) -> list[runs.RunRecord]:
    """The last ``n`` nightly runs with their steps, newest first."""
    with engine.connect() as conn:
        return runs.history(conn, JOB, n=n)


def pipeline_status(settings: Settings, engine: Engine, config: NightlyConfig) -> dict[str, Any]:
    """Is a run going (runs whose process died are marked killed first), the last success, and per
    step whether the next run would do work: ``due``, or why not."""
    with engine.begin() as conn:
        runs.reap_stale_runs(conn)
    with engine.connect() as conn:
        going = [run for run in runs.running_runs(conn) if run.job == JOB]
        last = runs.last_run(conn, JOB, status="done")
    ctx = Context(settings, engine, config)
    steps = []
    try:
        for step in STEPS:
            with engine.connect() as conn:
                previous = runs.last_success(conn, JOB, step.name)
            why = step.idle(ctx) or waiting(ctx, step, previous)
            due = "due" if why is None else f"not due: {why}"
            if why is None and previous is not None:
                try:
                    if previous.fingerprint == step.fingerprint(ctx):
                        due = "not due: inputs unchanged"
                except RecsysError as exc:  # its inputs are not ready: the run would stop there
                    due = f"due, and would fail now: {exc}"
            steps.append({"step": step.name, "due": due})
    finally:
        ctx.close()
    return {
        "running": going[-1].describe() if going else None,
        "last_success": None if last is None else last.as_dict(),
        "steps": steps,
    }
