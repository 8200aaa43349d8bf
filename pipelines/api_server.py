"""Serving the HTTP API: ``recsys serve`` runs ``recsys.api.app`` under uvicorn here.

uvicorn imports the app through :func:`app_from_env` in each worker process (``--workers
N`` starts N of them), which reads the settings from the environment like any command,
and the server's own options (keys or not, CORS origins) from ``RECSYS_API_SERVE``, set
by :func:`serve`. Each worker configures the project's logging: recsys's warnings and
one JSON access line per request on stderr, uvicorn's own messages only from ERROR up.
The command prints one line with the address once the server answers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from pipelines import logs
from pipelines.ui_server import check_port, url_of
from recsys.config import Settings, load_settings
from recsys.errors import ConfigError

OPTIONS_ENV = "RECSYS_API_SERVE"
READY_TIMEOUT_S = 120.0
KEEP_ALIVE_S = 30  # an idle connection is kept this long: programs that call every few seconds reuse it


def app_from_env() -> Any:
    """The app of one worker: settings from ``RECSYS_*``, server options from ``RECSYS_API_SERVE``."""
    # deferred: FastAPI and the models the app loads, only in a serving process
    from recsys.api.app import create_app

    options = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    settings = load_settings()
    logs.configure(settings.log_level, verbose=bool(options.get("verbose")))
    logs.configure_access_log()
    return create_app(settings, auth=bool(options.get("auth", True)), cors_origins=options.get("cors", ()))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _announce(url: str, echo: Callable[[str], None], line: str, stop: threading.Event) -> None:
    """Print ``line`` once ``url``/v1/health answers (polled from a thread beside the server)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/v1/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                echo(line)
                return
        time.sleep(0.2)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    auth: bool = True,
    cors_origins: Sequence[str] = (),
    verbose: bool = False,
    echo: Callable[[str], None],
) -> int:
    """Serve the API over ``settings`` until interrupted (Ctrl+C or SIGTERM); returns 0."""
    import uvicorn  # deferred: the server, only for `recsys serve`

    if not auth and not is_loopback(host):
        raise ConfigError(f"--no-auth serves only on a loopback address (127.0.0.1, ::1), not {host}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    check_port(host, port)
    os.environ["RECSYS_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ[OPTIONS_ENV] = json.dumps({"auth": auth, "cors": list(cors_origins), "verbose": verbose})
    url = url_of(host, port)
    keys = "keys required" if auth else "no keys (local only)"
    line = f"recsys API at {url}/v1  (docs: {url}/docs; {keys}; data: {settings.data_dir.resolve()}; Ctrl+C stops it)"
    stop = threading.Event()
    threading.Thread(target=_announce, args=(url, echo, line, stop), daemon=True).start()
    try:
        uvicorn.run(
            "pipelines.api_server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # the app logs each request as one JSON line
            log_config=None,  # the project's logging, configured by the command
            server_header=False,
            timeout_graceful_shutdown=10,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    finally:
        stop.set()
    return 0
