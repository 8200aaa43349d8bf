"""Starting a ``recsys`` server command (``ui``, ``serve``) in a child process on a free port, for the
tests and the benchmarks that talk to a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECSYS = [sys.executable, "-c", "from pipelines.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def recsys_env(**env: str) -> dict[str, str]:
    """This process's environment without its ``RECSYS_*`` settings, plus ``env``."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    child.update(env)
    return child


@contextmanager
def recsys_server(
    args: Sequence[str],
    ready_path: str,
    *,
    logs: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 90.0,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``recsys ARGS --port P`` on a free port; yields its URL once ``ready_path`` answers 200, and the
    process. Its stdout and stderr go to ``logs``/server.out and server.err (a pipe nobody reads
    would fill and stop the server)."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out, err = (logs / "server.out").open("w"), (logs / "server.err").open("w")
    process = subprocess.Popen(
        [*RECSYS, *args, "--port", str(port)],
        cwd=ROOT,
        env=recsys_env(**(env or {})),
        stdout=out,
        stderr=err,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"recsys {args[0]} exited ({process.returncode}): "
                    f"{(logs / 'server.out').read_text()}{(logs / 'server.err').read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{url}{ready_path}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"recsys {args[0]} did not answer within {timeout_s:.0f} s: {(logs / 'server.err').read_text()}"
                )
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
        err.close()
