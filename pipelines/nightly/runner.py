"""``recsys nightly``: the steps in order under the nightly lock, each recorded.

A step runs when it has something to do, is due by its cadence and its inputs differ
from those of its last success; otherwise it is recorded ``skipped`` with the reason.
A step that fails is recorded ``failed`` with its error line and ends the run: the
steps after it do not run, so the models and collections published before keep
serving, and the next run, finding the earlier steps' inputs unchanged, resumes at
the failed step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from pipelines.nightly.config import CADENCE_PERIOD, NightlyConfig
from pipelines.nightly.encoders import TRAIN_SEQ2SEQ
from pipelines.nightly.gate import EVALUATE, JOB, PUBLISH, TRAIN_ALS
from pipelines.nightly.lock import nightly_lock
from pipelines.nightly.steps import EMBED_AUDIO, EMBED_MUSIC, INGEST, Context, Step
from pipelines.nightly.trimodal import TRAIN_TRIMODAL
from pipelines.nightly.vectors import INDEX
from recsys.catalog import runs
from recsys.config import Settings
from recsys.errors import RecsysError

STEPS: tuple[Step, ...] = (
    INGEST,
    EMBED_AUDIO,
    TRAIN_TRIMODAL,  # before embed-music: a model published tonight has its vectors tonight
    EMBED_MUSIC,
    TRAIN_ALS,
    EVALUATE,
    PUBLISH,
    TRAIN_SEQ2SEQ,
    INDEX,
)


@dataclass
class StepResult:
    name: str
    status: str  # done, skipped, failed
    reason: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class NightlyResult:
    run_id: int
    steps: list[StepResult]

    @property
    def worked(self) -> list[str]:
        """The steps that did work (not skipped)."""
        return [s.name for s in self.steps if s.status == "done"]

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "steps": [vars(s) for s in self.steps]}


def run_nightly(
    settings: Settings,
    engine: Engine,
    config: NightlyConfig,
    *,
    echo: Callable[[str], None] = lambda line: None,
    steps: tuple[Step, ...] = STEPS,
) -> NightlyResult:
    """One nightly run (see the module docstring); LockedError at once if another is going."""
    with nightly_lock(engine):
        with engine.begin() as conn:
            run_id = runs.start_run(conn, JOB, {"config": None if config.path is None else str(config.path)})
        echo(f"nightly run {run_id}")
        ctx = Context(settings, engine, config, echo)
        results: list[StepResult] = []
        try:
            for step in steps:
                try:
                    result = _one(ctx, run_id, step)
                except BaseException as exc:
                    _fail(engine, run_id, step, results, exc)
                    if isinstance(exc, Exception) and not isinstance(exc, RecsysError):
                        raise RecsysError(
                            f"nightly run {run_id}: step {step.name} failed: {_error_line(exc)}"
                        ) from exc
                    raise
                results.append(result)
                echo(_line(result))
        finally:
            ctx.close()
        with engine.begin() as conn:
            runs.finish_run(conn, run_id, counts=_counts(results), metrics=_metrics(results))
        return NightlyResult(run_id, results)


def _error_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RecsysError) else f"{type(exc).__name__}: {exc}"


def _fail(engine: Engine, run_id: int, step: Step, results: list[StepResult], exc: BaseException) -> None:
    line = _error_line(exc)
    results.append(StepResult(step.name, "failed", line))
    with engine.begin() as conn:
        runs.fail_run(
            conn, run_id, f"step {step.name}: {line}", counts=_counts(results), metrics=_metrics(results)
        )


def _counts(results: list[StepResult]) -> dict[str, Any]:
    return {r.name: {"status": r.status, **r.counts} for r in results}


def _metrics(results: list[StepResult]) -> dict[str, Any]:
    """The gates' figures and decisions, when they ran (ALS; the video–music model)."""
    out: dict[str, Any] = {}
    for r in results:
        if r.name == EVALUATE.name and r.status == "done":
            out["evaluation"] = r.metrics
        if r.name == PUBLISH.name and r.status == "done":
            out["gate"] = r.metrics
        if r.name == TRAIN_TRIMODAL.name and r.status == "done":
            kept = ("published", "reason", "candidate_version", "metric")
            out["trimodal_gate"] = {k: r.metrics[k] for k in kept}
    return out


def _line(result: StepResult) -> str:
    if result.status == "skipped":
        return f"{result.name}: skipped ({result.reason})"
    shown = runs.counts_text(result.counts)
    return f"{result.name}: {result.status}" + (f" ({shown})" if shown else "")


def _one(ctx: Context, run_id: int, step: Step) -> StepResult:
    with ctx.engine.connect() as conn:
        last = runs.last_success(conn, JOB, step.name)
    reason = step.idle(ctx) or waiting(ctx, step, last)
    fingerprint = None
    if reason is None:
        fingerprint = step.fingerprint(ctx)
        if last is not None and last.fingerprint == fingerprint:
            reason = f"inputs unchanged since its success at {last.started_at:%Y-%m-%d %H:%M:%S} UTC"
    with ctx.engine.begin() as conn:
        step_id = runs.start_step(conn, run_id, step.name, fingerprint)
        if reason is not None:
            runs.end_step(conn, step_id, "skipped", metrics={"reason": reason})
    if reason is not None:
        return StepResult(step.name, "skipped", reason)
    ctx.echo(f"{step.name} ...")
    try:
        outcome = step.run(ctx)
    except BaseException as exc:
        with ctx.engine.begin() as conn:
            runs.end_step(conn, step_id, "failed", error=_error_line(exc))
        raise
    with ctx.engine.begin() as conn:
        runs.end_step(conn, step_id, "done", counts=outcome.counts, metrics=outcome.metrics)
    return StepResult(step.name, "done", None, outcome.counts, outcome.metrics)


def waiting(ctx: Context, step: Step, last: runs.Step | None) -> str | None:
    """Why ``step`` is not due yet, or None: its cadence, unless something its last success did not
    see overtook it (:attr:`Step.overtaken`: a new model is embedded the night it is published)."""
    reason = not_due(ctx.config, step, last)
    if reason is None or last is None or step.overtaken is None or step.cadence(ctx.config) == "never":
        return reason
    why = step.overtaken(ctx, last)
    if why is None:
        return reason
    ctx.echo(f"{step.name}: due before its cadence: {why}")
    return None


def not_due(config: NightlyConfig, step: Step, last: runs.Step | None) -> str | None:
    cadence = step.cadence(config)
    period = CADENCE_PERIOD[cadence]
    if period is None:
        return "cadence never"
    if last is None or last.finished_at is None or datetime.now(UTC) - last.finished_at >= period:
        return None
    return f"not due ({cadence}; last success at {last.finished_at:%Y-%m-%d %H:%M:%S} UTC)"
