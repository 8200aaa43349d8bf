"""The ``recsys`` command run as a user runs it: a child process, its exit status, stdout and stderr."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# The test's own settings (the server and the data to use) reach the child; no other RECSYS_ variable does.
_PASSED_ON = ("RECSYS_TEST_PG", "RECSYS_SHARED_DATA")


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_") or k in _PASSED_ON}
    return {**base, "PYTHONPATH": str(ROOT), **(env or {})}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def recsys(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 300,
    address_space: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``recsys ARGS`` to its end; with ``address_space``, under that memory limit (bytes)."""

    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run(
        command(*args),
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``error: …`` line of a command that failed as a user should see it fail (exit 1, no traceback)."""
    shown = result.stdout + result.stderr
    assert result.returncode == 1, shown
    assert "Traceback" not in shown, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    return lines[0]
