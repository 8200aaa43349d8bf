"""A real ``recsys serve`` (uvicorn in a child process, on a free port) over the shared demo data
dir, one per test module, with a key made for it; and the requests the tests make."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys.catalog import db
from recsys.catalog.api_keys import create_key
from tests.servers import recsys_server

# Small caps, so that the tests can pass them cheaply: uploads of 1 MB, videos of 10 s, bodies of 16 KiB.
SERVER_ENV = {
    "RECSYS_UI_MAX_UPLOAD_MB": "1",
    "RECSYS_UI_MAX_VIDEO_S": "10",
    "RECSYS_API_MAX_BODY_KB": "16",
    "RECSYS_API_RATE_PER_S": "1000",
    "RECSYS_API_RATE_BURST": "1000",
}
NO_KEY = ""


def make_key(
    data_dir: Path, prefix: str, *, rate: float | None = None, burst: int | None = None
) -> tuple[str, str]:
    """A new key of the demo catalog: (name, secret)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        return name, create_key(engine, name, rate_per_s=rate, burst=burst)
    finally:
        engine.dispose()


@dataclass
class Api:
    url: str
    key_name: str
    key: str
    data_dir: Path
    log: Path  # the server's stderr: its access lines

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        """``method path`` with the module's key (``key=""``: none, another: that one)."""
        secret = self.key if key is None else key
        headers = dict(kwargs.pop("headers", {}) or {})
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        return httpx.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def access_lines(self, *paths: str) -> list[dict[str, Any]]:
        """The server's JSON access lines, once one for each of ``paths`` is written (a line is
        written as its answer has gone, so it may follow the answer by a moment)."""
        deadline = time.monotonic() + 10
        while True:
            lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]
            if all(any(line["path"] == p for line in lines) for p in paths) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


def error(response: httpx.Response, status: int, code: str) -> str:
    """Assert an error answer: the status, JSON ``{"error": {"code", "message"}}``, no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return str(message)


@pytest.fixture(scope="module")
def api(
    demo_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Api]:
    prefix = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    name, secret = make_key(demo_dir, prefix)
    logs = tmp_path_factory.mktemp("api-server")
    with recsys_server(["serve", "--data-dir", str(demo_dir)], "/v1/ready", logs=logs, env=SERVER_ENV) as (
        url,
        _,
    ):
        yield Api(url, name, secret, demo_dir, logs / "server.err")
