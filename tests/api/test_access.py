"""Who may ask and how much: keys (missing, unknown, revoked), per-key rates, body caps, CORS, the
access log and the metrics, against a real ``recsys serve``."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from recsys.catalog import db
from tests.api.conftest import NO_KEY, Api, error, make_key

# One request per route family that needs a key, each valid once a key is given.
KEYED: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/tracks?q=rain", {}),
    ("GET", "/v1/tracks/1", {}),
    ("GET", "/v1/playlists?q=rock", {}),
    ("GET", "/v1/playlists/1", {}),
    ("POST", "/v1/continue", {"json": {"playlist_id": 1, "n": 5}}),
    ("GET", "/v1/playlists/1/similar?by=sif", {}),
    ("GET", "/v1/tracks/1/similar?by=music", {}),
    ("POST", "/v1/search/music", {"json": {"prompt": "slow drone"}}),
    ("POST", "/v1/video/score", {"files": {"video": ("clip.mov", b"x" * 10, "video/quicktime")}}),
    ("POST", "/v1/feedback", {"json": {"user": "ann", "track_id": 1, "rating": "like"}}),
    ("GET", "/v1/feedback?user=ann", {}),
    ("GET", "/v1/playlists/1/export?format=jspf", {}),
    ("POST", "/v1/playlists", {"json": {"name": "kept", "track_ids": [1]}}),
    ("GET", "/v1/catalog", {}),
    ("GET", "/metrics", {}),
]


def _cli(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"RECSYS_DATA_DIR": str(data_dir)})


@pytest.fixture(scope="module")
def revoked(api: Api) -> tuple[str, str]:
    """A key made and then revoked with the commands: (name, secret)."""
    made = _cli(api.data_dir, "api-key", "create", "tests-revoked-" + api.key_name[-8:])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    name = "tests-revoked-" + api.key_name[-8:]
    assert api.get("/v1/tracks/1", key=secret).status_code == 200  # usable until revoked
    gone = _cli(api.data_dir, "api-key", "revoke", name)
    assert gone.exit_code == 0 and "revoked" in gone.stdout, gone.output
    return name, secret


@pytest.mark.parametrize(("method", "path", "kwargs"), KEYED, ids=[f"{m} {p}" for m, p, _ in KEYED])
def test_every_keyed_route_refuses_a_missing_bad_or_revoked_key(
    api: Api, revoked: tuple[str, str], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    missing = api.request(method, path, key=NO_KEY, **kwargs)
    assert "api-key create" in error(missing, 401, "missing_key")
    assert missing.headers["www-authenticate"] == "Bearer"
    error(api.request(method, path, key="rsk_" + "0" * 43, **kwargs), 401, "invalid_key")
    name, secret = revoked
    assert name in error(api.request(method, path, key=secret, **kwargs), 401, "revoked_key")


def test_health_and_readiness_need_no_key(api: Api) -> None:
    assert api.get("/v1/health", key=NO_KEY).json() == {"status": "ok"}
    ready = api.get("/v1/ready", key=NO_KEY)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_the_key_may_come_in_its_own_header(api: Api) -> None:
    answer = httpx.get(f"{api.url}/v1/tracks/1", headers={"X-API-Key": api.key})
    assert answer.status_code == 200 and answer.json()["track_id"] == 1


def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not(api: Api) -> None:
    _, slow = make_key(api.data_dir, "tests-slow", rate=0.2, burst=2)
    assert [api.get("/v1/tracks/1", key=slow).status_code for _ in range(2)] == [200, 200]
    refused = api.get("/v1/tracks/1", key=slow)
    assert "0.2 requests per second" in error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 5  # one request more at 0.2 per second
    assert api.get("/v1/tracks/1").status_code == 200  # the module's own key has its own bucket


def test_the_command_stores_only_the_hash_of_a_key(api: Api) -> None:
    made = _cli(
        api.data_dir, "api-key", "create", "tests-hashed-" + api.key_name[-8:], "--rate", "3", "--burst", "4"
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"rsk_[A-Za-z0-9_-]{43}", secret)
    engine = db.make_engine(f"sqlite:///{api.data_dir / 'catalog.db'}")
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM api_key"))]
    engine.dispose()
    assert not any(secret in str(value) for row in rows for value in row)
    assert any(hashlib.sha256(secret.encode()).hexdigest() in row for row in rows)
    listed = _cli(api.data_dir, "api-key", "list")
    assert (
        "tests-hashed-" in listed.stdout and "3/s, burst 4" in listed.stdout and secret not in listed.stdout
    )
    again = _cli(api.data_dir, "api-key", "create", "tests-hashed-" + api.key_name[-8:])
    assert again.exit_code == 1 and "revoke it first" in again.output
    unknown = _cli(api.data_dir, "api-key", "revoke", "no-such-key")
    assert unknown.exit_code == 1 and "no API key named 'no-such-key'" in unknown.output


def test_a_body_over_the_cap_is_refused_whether_declared_or_streamed(api: Api) -> None:
    big = {"seeds": list(range(1, 400)), "title": "x" * 200, "pad": "y" * 20_000}
    assert "16 KiB" in error(api.post("/v1/continue", json=big), 413, "body_too_large")

    def chunks() -> Any:  # no Content-Length: the server counts what it reads
        for _ in range(40):
            yield b" " * 1024

    streamed = api.post("/v1/continue", content=chunks(), headers={"Content-Type": "application/json"})
    error(streamed, 413, "body_too_large")


def test_cors_is_off_by_default(api: Api) -> None:
    answer = api.get("/v1/tracks/1", headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(
        f"{api.url}/v1/continue",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    error(preflight, 405, "method_not_allowed")


def test_unknown_routes_and_methods_are_json_errors(api: Api) -> None:
    error(api.get("/v1/nothing-here"), 404, "not_found")
    error(api.request("DELETE", "/v1/tracks/1"), 405, "method_not_allowed")


def test_each_request_is_one_json_log_line_naming_the_key_never_the_secret(api: Api) -> None:
    api.get("/v1/tracks/2")
    api.get("/v1/tracks/999999999")
    lines = api.access_lines("/v1/tracks/2", "/v1/tracks/999999999")
    mine = [line for line in lines if line["path"] in ("/v1/tracks/2", "/v1/tracks/999999999")]
    assert [(line["method"], line["status"], line["key"]) for line in mine[-2:]] == [
        ("GET", 200, api.key_name),
        ("GET", 404, api.key_name),
    ]
    for line in lines:
        assert {"method", "path", "status", "latency_ms", "key"} <= set(line)
        assert isinstance(line["latency_ms"], float | int) and line["latency_ms"] >= 0
    assert api.key not in api.log.read_text()
    assert "Traceback" not in api.log.read_text()


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    api.get("/v1/tracks/3")
    text = api.get("/metrics").text
    counted = re.search(
        r'recsys_api_requests_total\{method="GET",route="/v1/tracks/\{track_id\}",status="200"\} (\d+)', text
    )
    assert counted and int(counted.group(1)) >= 1, text[:2000]
    assert 'recsys_api_request_seconds_bucket{le="0.15",method="GET",route="/v1/tracks/{track_id}"}' in text
    assert json.dumps(api.key) not in text
