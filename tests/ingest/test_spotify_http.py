"""The Web API client over real HTTP: rate limits, credentials, token URL, errors, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from pipelines.cli import app
from pipelines.ingest.spotify import SpotifyInputs, ingest_spotify
from pipelines.ingest.spotify_client import RetryPolicy, SpotifyApi
from recsys.config import Settings
from recsys.errors import ConfigError, InputError, SourceError
from tests.ingest.spotify_replay import FORBIDDEN, Replay

pytestmark = pytest.mark.shared_data

TRACK = "1zHlj4dQ8ZAtrayhuDDmkY"
RAP_RU = "1h9q8vXXDl2vHOmwdsuXms"
CLOSED = "37i9dQZF1DXdPec7aLTmlC"


@pytest.fixture
def replay(httpserver: HTTPServer, shared_data: Path) -> Replay:
    return Replay(httpserver, shared_data / "spotify_api" / "responses")


def rate_limited_once(replay: Replay, retry_after: str, then: str) -> list[int]:
    """Serve ``then`` at /tracks/TRACK after one 429 with ``Retry-After``; returns the statuses served."""
    served: list[int] = []
    body = replay.text(then)

    def respond(_request: Request) -> Response:
        if not served:
            served.append(429)
            return Response(
                json.dumps({"error": {"status": 429, "message": "API rate limit exceeded"}}),
                status=429,
                headers={"Retry-After": retry_after},
                content_type="application/json",
            )
        served.append(200)
        return Response(body, content_type="application/json")

    replay.handle(f"tracks/{TRACK}", respond)
    return served


def test_429_with_retry_after_is_waited_out(sqlite_engine: sa.Engine, replay: Replay) -> None:
    served = rate_limited_once(replay, "1", "find_track.txt")
    slept: list[float] = []
    api = SpotifyApi(replay.settings(), RetryPolicy(max_wait_s=5, sleep=slept.append))
    report = ingest_spotify(sqlite_engine, api, SpotifyInputs(tracks=[TRACK]))
    assert served == [429, 200]
    assert slept == [1.0] and api.policy.waits == [1.0]
    assert report.loaded == {"tracks": 1}


def test_429_is_really_slept_through_spotipy_session(replay: Replay) -> None:
    served = rate_limited_once(replay, "1", "find_track.txt")
    api = SpotifyApi(replay.settings(), RetryPolicy(max_wait_s=5))  # the real time.sleep
    track = api.get("track", api.sp.track, TRACK)
    assert track["id"] == TRACK and served == [429, 200] and api.policy.waits == [1.0]


def test_429_longer_than_the_bound_stops_with_a_clear_message(
    sqlite_engine: sa.Engine, replay: Replay
) -> None:
    served = rate_limited_once(replay, "3600", "find_track.txt")
    slept: list[float] = []
    api = SpotifyApi(replay.settings(), RetryPolicy(max_wait_s=30, sleep=slept.append))
    with pytest.raises(SourceError, match=r"asks to wait 3600 s \(Retry-After\), more than the allowed 30 s"):
        ingest_spotify(sqlite_engine, api, SpotifyInputs(tracks=[TRACK]))
    assert served == [429] and slept == []


def test_429_forever_gives_up_after_the_retries(replay: Replay) -> None:
    replay.serve(f"tracks/{TRACK}", {"error": {"status": 429}}, status=429, headers={"Retry-After": "1"})
    slept: list[float] = []
    api = SpotifyApi(replay.settings(), RetryPolicy(max_retries=2, sleep=slept.append))
    with pytest.raises(SourceError, match=r"still answering 429 for track .* after 2 retries"):
        api.get("track x", api.sp.track, TRACK)
    assert slept == [1.0, 1.0]


def test_server_errors_are_retried_then_named(replay: Replay) -> None:
    replay.serve(f"tracks/{TRACK}", "oops", status=502)
    api = SpotifyApi(replay.settings(), RetryPolicy(max_retries=2, backoff_s=0))
    with pytest.raises(SourceError, match=r"kept failing for track x after 2 retries \(.*502"):
        api.get("track x", api.sp.track, TRACK)
    assert len(replay.requests) == 3


def test_client_credentials_use_the_configured_token_url(replay: Replay) -> None:
    seen: list[str] = []
    replay.server.expect_request("/api/token", method="POST").respond_with_json(
        {"access_token": "token-from-replay", "token_type": "Bearer", "expires_in": 3600}
    )

    def respond(request: Request) -> Response:
        seen.append(request.headers.get("Authorization", ""))
        return Response(replay.text("find_track.txt"), content_type="application/json")

    replay.handle(f"tracks/{TRACK}", respond)
    cfg = replay.settings(
        spotify_access_token=None, spotify_client_id="id", spotify_client_secret=SecretStr("secret")
    )
    api = SpotifyApi(cfg)
    assert api.get("track", api.sp.track, TRACK)["id"] == TRACK
    assert seen == ["Bearer token-from-replay"] and not api.user_token


def test_refused_client_credentials_and_token(replay: Replay) -> None:
    replay.server.expect_request("/api/token", method="POST").respond_with_json(
        {"error": "invalid_client", "error_description": "Invalid client secret"}, status=400
    )
    cfg = replay.settings(
        spotify_access_token=None, spotify_client_id="id", spotify_client_secret=SecretStr("x")
    )
    api = SpotifyApi(cfg)
    with pytest.raises(SourceError, match="Invalid client secret"):
        api.get("track", api.sp.track, TRACK)

    replay.serve(
        f"tracks/{TRACK}", {"error": {"status": 401, "message": "The access token expired"}}, status=401
    )
    api = SpotifyApi(replay.settings())
    with pytest.raises(SourceError, match=r"rejected the access token \(401\).*The access token expired"):
        api.get("track x", api.sp.track, TRACK)


def test_unreachable_api_and_missing_credentials(sqlite_engine: sa.Engine) -> None:
    with pytest.raises(ConfigError, match="RECSYS_SPOTIFY_ACCESS_TOKEN"):
        SpotifyApi(Settings(spotify_access_token=None, spotify_client_id=None))
    api = SpotifyApi(
        Settings(spotify_api_base="http://127.0.0.1:9/v1/", spotify_access_token=SecretStr("t")),
        RetryPolicy(max_retries=0, timeout_s=2),
    )
    with pytest.raises(SourceError, match=r"cannot reach the Spotify Web API at http://127.0.0.1:9/v1/"):
        ingest_spotify(sqlite_engine, api, SpotifyInputs(tracks=[TRACK]))
    with pytest.raises(InputError, match="not a Spotify album id"):
        ingest_spotify(sqlite_engine, api, SpotifyInputs(albums=["https://example.com/x"]))
    client_only = SpotifyApi(Settings(spotify_client_id="id", spotify_client_secret=SecretStr("s")))
    with pytest.raises(ConfigError, match="--mine and --saved read the current user's library"):
        ingest_spotify(sqlite_engine, client_only, SpotifyInputs(mine=True))


def test_cli_reports_403_in_one_line_and_goes_on(
    tmp_path: Path, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    playlist = replay.doc("get_playlist.txt")
    replay.serve(f"playlists/{RAP_RU}", playlist)
    replay.serve(f"playlists/{CLOSED}", FORBIDDEN, status=403)
    replay.refuse_everything_else()
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    for name, value in {
        "RECSYS_DATABASE_URL": url,
        "RECSYS_SPOTIFY_API_BASE": replay.base,
        "RECSYS_SPOTIFY_ACCESS_TOKEN": "replay-user-token",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0

    result = runner.invoke(app, ["ingest", "spotify", "--playlist", CLOSED, "--playlist", RAP_RU])
    assert result.exit_code == 0, result.output
    refused = [line for line in result.stderr.splitlines() if CLOSED in line]
    assert refused == [
        f"spotify: playlist {CLOSED}: HTTP 403 Forbidden (Spotify answers 403 for endpoints closed to this app "
        "and for playlists the user neither owns nor collaborates on)"
    ]
    assert "loaded 1 playlists, 4 playlist tracks, 4 tracks" in result.stdout

    again = runner.invoke(app, ["ingest", "spotify", "--playlist", RAP_RU, "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 1

    bad = runner.invoke(app, ["ingest", "spotify", "--album", "not/an id"])
    assert bad.exit_code == 1 and "not a Spotify album id" in bad.stderr
    monkeypatch.delenv("RECSYS_SPOTIFY_ACCESS_TOKEN")
    nothing = runner.invoke(app, ["ingest", "spotify"])
    assert nothing.exit_code == 1 and nothing.stderr.startswith("error: nothing to ingest")
