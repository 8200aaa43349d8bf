"""Serving the Streamlit UI: ``recsys ui`` and ``recsys demo --serve`` start it here.

Streamlit runs in a child process (``python -m streamlit run ui/app.py``), headless, without
usage statistics or file watching, with error details kept off the page; the data dir
travels as ``RECSYS_DATA_DIR``. The command prints one line with the address once the
server answers its health check, and stops the server on Ctrl+C.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from recsys.config import Settings
from recsys.errors import ConfigError, RecsysError

READY_TIMEOUT_S = 60.0
THEME = {
    "theme.base": "light",
    "theme.primaryColor": "#1F6F5C",
    "theme.backgroundColor": "#FBFAF7",
    "theme.secondaryBackgroundColor": "#F0EEE8",
    "theme.textColor": "#1E2326",
}


def app_path() -> Path:
    """The UI's entry script (``ui/app.py`` of the installed project)."""
    spec = importlib.util.find_spec("ui")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the UI package is not installed: install the project with its `ui` extra")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(host: str, port: int, settings: Settings) -> list[str]:
    options = {
        "server.headless": "true",
        "server.address": host,
        "server.port": str(port),
        "server.fileWatcherType": "none",
        "server.runOnSave": "false",
        "server.maxUploadSize": str(settings.ui_max_upload_mb),
        "browser.gatherUsageStats": "false",
        "client.showErrorDetails": "false",
        "client.toolbarMode": "minimal",
        "logger.level": "error",
        # Streamlit collects the whole heap after every run of a page by default; with the
        # catalog's models held in memory that pause (it holds the interpreter, so the
        # message that the run finished waits too) cost more than the page's own work.
        # Python's own generational collection still runs; see ui/services.py for freezing.
        "runner.postScriptGC": "false",
        **THEME,
    }
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        *(f"--{k}={v}" for k, v in options.items()),
    ]


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port"
            ) from None


def url_of(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RecsysError(f"the UI server stopped as it started (exit status {process.returncode})")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    process.terminate()
    raise RecsysError(f"the UI server did not answer at {url} within {timeout_s:.0f} s")


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the parent dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_on(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    echo: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> int:
    """Serve the UI over ``settings`` until interrupted; returns the server's exit status."""
    check_port(host, port)
    child_env = {**os.environ, **(env or {}), "RECSYS_DATA_DIR": str(settings.data_dir.resolve())}
    child_env.setdefault("PYTHONWARNINGS", "ignore")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # stop the server too, not only this process
        signal.signal(signum, _stop_on)
    process = subprocess.Popen(
        streamlit_command(host, port, settings),
        env=child_env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        url = url_of(host, port)
        wait_ready(url, process)
        echo(f"recsys UI at {url}  (data: {settings.data_dir.resolve()}; Ctrl+C stops it)")
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
