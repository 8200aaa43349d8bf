"""The ``recsys`` command: the root app assembled from the groups of ``pipelines.commands``.

Each command lives in its area's module under ``pipelines/commands/``: it builds the
settings once, calls into ``recsys`` or ``pipelines``, and prints the result. Named errors
(``recsys.errors.RecsysError``) become one line on stderr and exit code 1. This module
adds the groups to the root app and handles ``--verbose`` wherever it is given.
"""

from __future__ import annotations

import copy
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

# The area modules add their commands to their groups as they are imported, so this order is
# the order in which `recsys --help` and each group's help list them.
# isort: off
from pipelines.commands import demo, db, catalog, ingest, index  # noqa: F401
from pipelines.commands import audio, models_cf, continuation, playlist_encoder, video, nightly, ui, api  # noqa: F401

# isort: on
from pipelines import logs
from pipelines.commands import groups
from pipelines.commands.support import settings
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


@app.callback()
def _start(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Music recommendation and playlist discovery."""
    logs.configure(_log_level(), verbose=verbose)


app.add_typer(groups.top_app)
for name, group in groups.GROUPS.items():
    app.add_typer(group, name=name)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
