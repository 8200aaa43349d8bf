"""Every `recsys` command and option is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from pipelines.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if hasattr(command, "commands"):  # a group (typer ships its own click classes)
        for name, sub in command.commands.items():
            found.extend(_walk(sub, (*path, name)))
    return found


def commands() -> list[tuple[str, list[str]]]:
    out = []
    root = typer.main.get_command(app)
    # Options of the root (--verbose), which every command also takes after its name: documented once.
    shared = {o for p in root.params for o in p.opts}
    for path, command in _walk(root):
        if not path or hasattr(command, "commands"):
            continue
        options = [
            o
            for p in command.params
            if p.param_type_name == "option"
            for o in p.opts
            if o.startswith("--") and o not in shared
        ]
        out.append(("recsys " + " ".join(path), options))
    return out


def test_the_options_every_command_takes_are_in_the_readme() -> None:
    text = README.read_text()
    for param in typer.main.get_command(app).params:
        assert all(opt in text for opt in param.opts if opt != "--help"), param.opts


def test_there_are_commands_to_check() -> None:
    names = [name for name, _ in commands()]
    assert "recsys ingest mpd" in names and "recsys catalog stats" in names


def test_every_command_and_option_is_in_the_readme() -> None:
    text = README.read_text()
    missing = []
    for name, options in commands():
        match = re.search(rf"^#+ `{re.escape(name)}\b.*$", text, flags=re.M)
        if match is None:
            missing.append(f"{name} (no heading `{name} …`)")
            continue
        # The command's section runs from its heading to the next command heading.
        rest = text[match.end() :]
        following = re.search(r"^#+ `recsys ", rest, flags=re.M)
        section = match.group(0) + (rest if following is None else rest[: following.start()])
        missing.extend(f"{name} {opt}" for opt in options if opt != "--help" and opt not in section)
    assert not missing, "undocumented in README.md: " + ", ".join(missing)
