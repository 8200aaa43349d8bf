"""``-v``/``--verbose`` before the subcommand (``recsys -v db status``) or after it (``recsys db status -v``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.child import recsys
from tests.ingest.test_mpd_bad_input import playlist, slice_bytes

DEBUG = "DEBUG recsys.catalog.deferred: set aside for the load: "


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "slices"
    folder.mkdir()
    (folder / "a.json").write_bytes(slice_bytes([playlist(1, 3), playlist(2, 2, first=10)]))
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "ingest", "mpd", "SLICES", "--defer-indexes"],
        ["ingest", "mpd", "SLICES", "--defer-indexes", "-v"],
        ["ingest", "mpd", "--verbose", "SLICES", "--defer-indexes"],
    ],
    ids=["before", "after", "among the options"],
)
def test_verbose_before_or_after_the_subcommand(data: Path, args: list[str]) -> None:
    env = {"RECSYS_DATA_DIR": str(data / "store")}
    upgraded = recsys("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr

    result = recsys(*[str(data / "slices") if a == "SLICES" else a for a in args], env=env)

    assert result.returncode == 0, result.stderr
    assert any(line.startswith(DEBUG) for line in result.stderr.splitlines()), result.stderr
    assert "loaded 2 playlists" in result.stdout


@pytest.mark.parametrize(
    "args", [["-v", "db", "status"], ["db", "status", "-v"], ["db", "status", "--json", "--verbose"]]
)
def test_db_status_takes_it_on_either_side(tmp_path: Path, args: list[str]) -> None:
    result = recsys(*args, env={"RECSYS_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout


def test_without_it_no_debug_lines(data: Path) -> None:
    env = {"RECSYS_DATA_DIR": str(data / "store")}
    assert recsys("db", "upgrade", env=env).returncode == 0
    result = recsys("ingest", "mpd", str(data / "slices"), "--defer-indexes", env=env)
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stderr


def test_every_command_takes_it() -> None:
    import typer

    from pipelines.cli import app

    def leaves(command: object, path: str) -> list[tuple[str, object]]:
        children = getattr(command, "commands", None)
        if children is None:
            return [(path, command)]
        return [leaf for name, child in children.items() for leaf in leaves(child, f"{path} {name}")]

    found = leaves(typer.main.get_command(app), "recsys")
    assert len(found) > 20
    missing = [path for path, command in found if not any("-v" in p.opts for p in command.params)]  # type: ignore[attr-defined]
    assert missing == []
