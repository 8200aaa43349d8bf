"""A local-only server without keys: ``--no-auth`` answers without a key, on loopback addresses only."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pipelines.api_server import is_loopback
from pipelines.cli import app
from recsys.api.app import create_app
from recsys.config import load_settings


def test_without_keys_every_route_answers_without_one(demo_dir: Path) -> None:
    with TestClient(create_app(load_settings(data_dir=demo_dir), auth=False, warm=False)) as client:
        assert client.get("/v1/tracks/1").json()["track_id"] == 1
        assert client.get("/metrics").status_code == 200
        assert (
            "access-control-allow-origin"
            not in client.get("/v1/tracks/1", headers={"Origin": "https://a.example"}).headers
        )


def test_cors_answers_only_the_origins_given(demo_dir: Path) -> None:
    made = create_app(
        load_settings(data_dir=demo_dir), auth=False, warm=False, cors_origins=["https://a.example"]
    )
    with TestClient(made) as client:
        allowed = client.get("/v1/tracks/1", headers={"Origin": "https://a.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://a.example"
        other = client.get("/v1/tracks/1", headers={"Origin": "https://b.example"})
        assert "access-control-allow-origin" not in other.headers


def test_no_auth_refuses_an_address_beyond_this_machine(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")
    result = CliRunner().invoke(
        app,
        ["db", "upgrade"],
        env={"RECSYS_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(
        app,
        ["serve", "--no-auth", "--host", "0.0.0.0", "--port", "1"],
        env={"RECSYS_DATA_DIR": str(tmp_path)},
    )
    assert refused.exit_code == 1
    assert "--no-auth serves only on a loopback address" in refused.output
