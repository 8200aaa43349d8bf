"""The ``recsys`` command: thin translation from arguments to library calls and back.

Every command builds the settings once, calls into ``recsys`` or ``pipelines``, and
prints the result. Named errors (``recsys.errors.RecsysError``) become one line on
stderr and exit code 1.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pipelines.commands.nightly import nightly_app
from pipelines.commands.support import (
    catalog_engine,
    echo_json,
    engine_for,
    finish_ingest,
    settings,
    translate_errors,
)
from recsys.errors import ConfigError

VERBOSE_HELP = "Show recsys's debug messages and the libraries' warnings on stderr."


def _log_level() -> str:
    try:
        return settings().log_level
    except ConfigError:
        return "WARNING"  # the command itself reports the invalid setting, in one line


def _verbose_after(ctx: object, param: object, value: bool) -> None:
    """``-v`` given after the subcommand: logging configured again, verbose, before the command runs."""
    if value:
        from pipelines import logs

        logs.configure(_log_level(), verbose=True)


class _VerboseEverywhere(TyperGroup):
    """The root group, which gives every command a ``--verbose``/``-v`` of its own (a copy of the
    root's, applied as soon as it is parsed), so that it may come after the subcommand
    (``recsys db status -v``) as well as before it (``recsys -v db status``)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        root = next(param for param in self.params if param.name == "verbose")
        _add_verbose(root, list(self.commands.values()))


def _add_verbose(root: Any, commands: list[Any]) -> None:
    for command in commands:
        if isinstance(command, TyperGroup):
            _add_verbose(root, list(command.commands.values()))
        elif not any(param.name == "verbose" for param in command.params):
            option = copy.copy(root)
            option.expose_value, option.is_eager, option.callback = False, True, _verbose_after
            command.params.append(option)


app = typer.Typer(
    cls=_VerboseEverywhere,
    no_args_is_help=True,
    add_completion=False,
    help="Music recommendation and playlist discovery.",
)
db_app = typer.Typer(no_args_is_help=True, help="Catalog database: migrations and status.")
catalog_app = typer.Typer(no_args_is_help=True, help="Inspect the catalog.")
ingest_app = typer.Typer(
    no_args_is_help=True, help="Load catalogs, playlists, audio and listening histories."
)


@app.callback()
def _start(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Music recommendation and playlist discovery."""
    from pipelines import logs

    logs.configure(_log_level(), verbose=verbose)


app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(ingest_app, name="ingest")
app.add_typer(nightly_app, name="nightly")

# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
@translate_errors
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the catalog database to the newest schema (idempotent)."""
    from recsys.catalog import db

    engine = catalog_engine(settings())
    db.upgrade(engine, revision)
    typer.echo(f"catalog {db.describe(engine)} at revision {db.current_revision(engine)}")
    if revision == "head":
        from recsys.catalog import deferred

        rebuilt = deferred.rebuild(engine)
        if rebuilt:
            typer.echo(f"rebuilt what an interrupted bulk load had set aside: {', '.join(rebuilt)}")


@db_app.command("status")
@translate_errors
def db_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the database URL, its revision, pending migrations, indexes set aside and runs still going."""
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


# --------------------------------------------------------------------------- catalog


@catalog_app.command("stats")
@translate_errors
def catalog_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the counts.")] = False,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to count.")] = "catalog",
) -> None:
    """Counts of playlists, playlist entries, tracks, artists, albums, listens, rejects and feedback."""
    from recsys.catalog.feedback import feedback_counts
    from recsys.catalog.queries import catalog_stats as stats
    from recsys.catalog.queries import reject_reasons

    engine = engine_for(settings())
    with engine.connect() as conn:
        counts = stats(conn, namespace=namespace)
        reasons = reject_reasons(conn, limit=10) if not as_json else []
        opinions = feedback_counts(conn) if not as_json else {}
    if as_json:
        echo_json(counts)
        return
    lines = {k: v for k, v in counts.items() if k != "feedback"}
    lines |= {
        "likes": opinions["likes"],
        "dislikes": opinions["dislikes"],
        "feedback users": opinions["users"],
    }
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        typer.echo(f"{key:<{width}}  {value:>12,}")
    for source, reason, count in reasons:
        typer.echo(f"  reject  {count:>8,}  {source}: {reason}")


@catalog_app.command("export")
@translate_errors
def catalog_export(
    playlist: Annotated[str, typer.Argument(help="Playlist id or source key (mpd:12, saved:…).")],
    fmt: Annotated[str, typer.Option("--format", help="jspf (JSON) or m3u (extended M3U).")] = "jspf",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
) -> None:
    """Export a catalog playlist as JSPF or M3U."""
    from recsys.catalog.export import catalog_playlist, export_tracks, to_jspf, to_m3u
    from recsys.errors import InputError

    kind = fmt.strip().lower()
    if kind not in ("jspf", "m3u"):
        raise InputError(f"unknown format {fmt!r}: use jspf or m3u")
    engine = engine_for(settings())
    found = catalog_playlist(engine, playlist)
    tracks = export_tracks(engine, found.track_ids)
    if kind == "jspf":
        document = to_jspf(found.name, tracks, creator=found.owner, annotation=found.description)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        text = to_m3u(found.name, tracks)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    typer.echo(f"playlist {found.playlist_id} ({len(tracks)} tracks) → {out}")


# --------------------------------------------------------------------------- ingest


@ingest_app.command("mpd")
@translate_errors
def ingest_mpd(
    paths: Annotated[
        list[Path], typer.Argument(help="MPD slice files (.json, .json.gz), directories or .zip archives.")
    ],
    namespace: Annotated[
        str, typer.Option(help="Playlist namespace (held-out test sets use their own).")
    ] = "catalog",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    defer_indexes: Annotated[
        bool | None,
        typer.Option(
            "--defer-indexes/--keep-indexes",
            help="Set secondary indexes and foreign keys aside during the load and rebuild them at its end "
            "(default: only for a load of about a million entries or more).",
        ),
    ] = None,
) -> None:
    """Ingest Million Playlist Dataset slices (full or trimmed schema)."""
    from pipelines.ingest.guards import InputLimits
    from pipelines.ingest.mpd import ingest_mpd as run
    from pipelines.ingest.report import Progress

    cfg = settings()
    report = run(
        engine_for(cfg),
        paths,
        namespace=namespace,
        batch_rows=cfg.batch_rows,
        progress=Progress.auto(),
        defer_indexes=defer_indexes,
        limits=InputLimits.from_settings(cfg),
    )
    finish_ingest(report, as_json)


# --------------------------------------------------------------------------- demo


@app.command("demo")
@translate_errors
def demo(
    playlists: Annotated[int, typer.Option(help="How many demo playlists to generate.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed of the catalog generator.")] = 7,
    audio_clips: Annotated[int, typer.Option(help="Demo audio clips per style (0: skip demo audio).")] = 4,
    video_clips: Annotated[
        int, typer.Option(help="Synthetic video–music clips (0: skip the video model).")
    ] = 300,
    video_epochs: Annotated[int, typer.Option(help="Training epochs of the video–music model.")] = 30,
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the UI on the demo data.")] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="With --serve: port to listen on.")] = 8501,
) -> None:
    """The main job on embedded defaults: generate demo data, ingest, embed, train, print the catalog statistics."""
    from pipelines.demo import DemoConfig, DemoPlan, run_demo
    from pipelines.ui_server import check_port
    from pipelines.ui_server import serve as serve_ui

    cfg = settings()
    plan = DemoPlan(
        catalog=DemoConfig(playlists=playlists, seed=seed),
        audio_clips_per_style=audio_clips,
        video_clips=video_clips,
        video_epochs=video_epochs,
    )
    if serve:
        check_port(host, port)  # before minutes of work, not after
    run_demo(cfg, engine_for(cfg, migrate=True), plan, echo=typer.echo)
    if serve:
        raise typer.Exit(serve_ui(cfg, host=host, port=port, echo=typer.echo))


def _register_command_modules() -> None:
    """Each area's commands live in their own module under pipelines/commands and register here."""
    from pipelines import commands

    for register in commands.REGISTRY:
        register(app=app, ingest_app=ingest_app)


_register_command_modules()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
