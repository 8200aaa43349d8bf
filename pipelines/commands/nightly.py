"""``recsys nightly``: the incremental pipeline, its history and its status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors
from recsys.catalog import runs

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@groups.nightly_app.callback(invoke_without_command=True)
@translate_errors
def nightly(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="The pipeline file (default: <data dir>/nightly.toml).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline once: each step whose inputs changed since its last success, in order."""
    if ctx.invoked_subcommand is not None:
        return
    # deferred: the pipeline's jobs (polars, pyarrow, the vector store)
    from pipelines.nightly.config import load_config
    from pipelines.nightly.runner import run_nightly

    cfg = settings()
    pipeline = load_config(config, cfg)  # a bad file fails before the database is touched
    result = run_nightly(
        cfg, engine_for(cfg, migrate=True), pipeline, echo=(lambda line: None) if as_json else typer.echo
    )
    if as_json:
        echo_json(result.as_dict())


@groups.nightly_app.command("history")
@translate_errors
def nightly_history(
    n: Annotated[int, typer.Option("--n", min=1, help="How many runs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The last runs with each step's status, timing and counts, and the gate's decision."""
    from pipelines.nightly.status import run_history  # deferred: the pipeline's jobs, as above

    records = run_history(engine_for(settings()), n=n)
    if as_json:
        echo_json([r.as_dict() for r in records])
        return
    if not records:
        typer.echo("no nightly run yet")
    for record in records:
        for line in _describe(record.as_dict()):
            typer.echo(line)


def _describe(run: dict[str, Any]) -> list[str]:
    took = "" if run["seconds"] is None else f" in {run['seconds']:.1f} s"
    lines = [f"run {run['id']}  {run['status']}  started {run['started_at'][:19]} UTC{took}"]
    if run["error"]:
        lines.append(f"  error: {run['error']}")
    for step in run["steps"]:
        counts = runs.counts_text(step["counts"])
        why = step["metrics"].get("reason") if step["status"] == "skipped" else step["error"]
        seconds = "" if step["seconds"] is None else f"{step['seconds']:.1f} s"
        detail = "; ".join(part for part in (counts, why) if part)
        lines.append(f"  {step['step']:<14} {step['status']:<8} {seconds:>8}  {detail}")
    for key, label in (("gate", "gate"), ("trimodal_gate", "video–music gate")):
        gate = run["metrics"].get(key)
        if gate:
            lines.append(f"  {label}: {'published' if gate['published'] else 'refused'}: {gate['reason']}")
    return lines


@groups.nightly_app.command("status")
@translate_errors
def nightly_status(
    config: Annotated[
        Path | None, typer.Option("--config", help="The pipeline file (default: <data dir>/nightly.toml).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Whether a run is going now, the last success, and which steps are due."""
    # deferred: the pipeline's jobs, as above
    from pipelines.nightly.config import load_config
    from pipelines.nightly.status import pipeline_status

    cfg = settings()
    state = pipeline_status(cfg, engine_for(cfg), load_config(config, cfg))
    if as_json:
        echo_json(state)
        return
    typer.echo(f"running: {state['running'] or 'no'}")
    last = state["last_success"]
    shown = "none" if last is None else f"run {last['id']} at {last['started_at'][:19]} UTC"
    typer.echo(f"last success: {shown}")
    for step in state["steps"]:
        typer.echo(f"  {step['step']:<12} {step['due']}")
