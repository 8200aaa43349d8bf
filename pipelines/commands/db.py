"""``recsys db``: the catalog database's migrations and status."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import catalog_engine, echo_json, settings, translate_errors


@groups.db_app.command("upgrade")
@translate_errors
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the catalog database to the newest schema (idempotent)."""
    # deferred: psycopg
    from recsys.catalog import db

    engine = catalog_engine(settings())
    db.upgrade(engine, revision)
    typer.echo(f"catalog {db.describe(engine)} at revision {db.current_revision(engine)}")
    if revision == "head":
        # deferred: psycopg
        from recsys.catalog import deferred

        rebuilt = deferred.rebuild(engine)
        if rebuilt:
            typer.echo(f"rebuilt what an interrupted bulk load had set aside: {', '.join(rebuilt)}")


@groups.db_app.command("status")
@translate_errors
def db_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the database URL, its revision, pending migrations, indexes set aside and runs still going."""
    # deferred: psycopg
    from recsys.catalog import db, deferred, runs

    engine = catalog_engine(settings())
    current, head = db.current_revision(engine), db.head_revision()
    missing: list[str] = []
    running: list[runs.Run] = []
    killed: list[runs.Run] = []
    if current == head:
        with db.write_transaction(engine) as conn:
            killed = runs.reap_stale_runs(conn)
        with engine.connect() as conn:
            missing = deferred.missing(conn)
            running = runs.running_runs(conn)
    loading = bool(missing) and deferred.load_running(engine)
    state = {
        "database": db.describe(engine),
        "revision": current,
        "head": head,
        "up_to_date": current == head,
        "deferred": missing,
        "deferred_by_running_load": loading,
        "runs": {"running": [r.as_dict() for r in running], "killed": [r.as_dict() for r in killed]},
    }
    if as_json:
        echo_json(state)
        return
    typer.echo(
        f"database: {state['database']}\nrevision: {current or 'none (run `recsys db upgrade`)'}\nhead:     {head}"
    )
    if current != head:
        typer.echo("migrations pending: run `recsys db upgrade`")
    if missing and loading:
        typer.echo(
            f"set aside by a bulk load running now (it rebuilds them when it ends): {', '.join(missing)}"
        )
    elif missing:
        typer.echo(
            f"set aside by an interrupted bulk load (`recsys db upgrade` rebuilds them): {', '.join(missing)}"
        )
    for run in running:
        typer.echo(f"running: {run.describe()}")
    for run in killed:
        typer.echo(f"marked killed: {run.error}")
