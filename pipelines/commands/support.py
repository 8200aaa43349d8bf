"""Shared pieces of the command line: settings, the catalog engine, error translation, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from sqlalchemy import Engine

from recsys.config import Settings, load_settings
from recsys.errors import RecsysError

F = TypeVar("F", bound=Callable[..., Any])


ExecutorOption = Annotated[
    str | None,
    typer.Option(
        help="Where files are decoded and embedded: local (this process) or ray (default: RECSYS_EXECUTOR)."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join with --executor ray, HOST:PORT (default: RECSYS_RAY_ADDRESS)."),
]
RayActorsOption = Annotated[
    int | None,
    typer.Option(min=1, help="Ray actors (default: RECSYS_RAY_ACTORS, else one per GPU, else 2)."),
]


def executor_for(cfg: Settings, executor: str | None, address: str | None, actors: int | None) -> Any:
    """The embedding executor the options (over the settings) ask for: None for this process."""
    # deferred: numpy
    from pipelines.embed.executors import make_executor

    return make_executor(
        (executor or cfg.executor).strip().lower(),
        address=address or cfg.ray_address,
        actors=actors or cfg.ray_actors,
    )


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def translate_errors(fn: F) -> F:
    """Turn the library's named errors into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RecsysError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    """The settings of this run: built once, where the command starts (an invalid value: one ``ConfigError`` line)."""
    context = click.get_current_context(silent=True)
    if context is not None and isinstance(context.find_root().obj, Settings):
        return context.find_root().obj
    cfg = load_settings()
    if context is not None and context.find_root().obj is None:
        context.find_root().obj = cfg
    return cfg


ServedDataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data dir to serve (default: RECSYS_DATA_DIR or ./data)."),
]
"""The ``--data-dir`` option of the commands that serve (``recsys ui``, ``recsys serve``)."""


def served_settings(data_dir: Path | None) -> Settings:
    """The run's settings, with ``--data-dir`` in place of the configured data dir when given."""
    cfg = settings()
    return cfg if data_dir is None else cfg.model_copy(update={"data_dir": data_dir.expanduser()})


def catalog_engine(cfg: Settings) -> Engine:
    """The catalog engine as the settings describe it (the data dir made for the embedded database)."""
    # deferred: psycopg
    from recsys.catalog import db

    if cfg.database_url is None:
        cfg.ensure_data_dir()
    return db.settings_engine(cfg)


def engine_for(cfg: Settings, *, migrate: bool = False) -> Engine:
    """The catalog engine; checks (or applies, with ``migrate``) the migrations first."""
    # deferred: psycopg
    from recsys.catalog import db

    engine = catalog_engine(cfg)
    if migrate:
        db.upgrade(engine)
    else:
        db.require_current(engine)
    return engine


def echo_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


def finish_ingest(report: Any, as_json: bool) -> None:
    """Print an ingest report (JSON, or its messages, unreadable inputs and summary line);
    exit 1 when an input could not be read at all."""
    if as_json:
        echo_json(report.as_dict())
    else:
        for message in report.messages:
            typer.echo(message, err=True)
        for line in report.unreadable:
            typer.echo(f"error: {line}", err=True)
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
