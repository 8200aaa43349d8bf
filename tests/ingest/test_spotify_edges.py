"""Hostile Web API servers over real local HTTP: answers that trickle, odd Retry-After values, a bad token endpoint.

Each case is a real HTTP server on 127.0.0.1 (a threading server for the ones that
write byte by byte, pytest-httpserver for the others); the messages are what a user
reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from pipelines.ingest.spotify_client import (
    RetryPolicy,
    SpotifyApi,
    invalid_retry_after_note,
    parse_retry_after,
)
from recsys.config import Settings
from recsys.errors import SourceError
from tests.cli.child import one_line_error, recsys

TRACK = {"id": "x", "name": "A Song", "type": "track"}
BODY = json.dumps(TRACK).encode()
STEP_S = 0.25  # between two bytes of a trickled answer: the whole answer takes about 8 s


class Trickle:
    """A server that sends its answer one byte at a time, in the headers or in the body."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.sent = 0  # bytes of the trickled part written before the client went away
        self.finished = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.answer(self)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
        slow_header = b"X-Padding: " + b"p" * 30 + b"\r\n"
        try:
            if self.where == "headers":
                handler.wfile.write(head.encode())
                self._trickle(handler, slow_header)
                handler.wfile.write(b"\r\n" + BODY)
            else:
                handler.wfile.write(head.encode() + b"\r\n")
                self._trickle(handler, BODY)
            handler.wfile.flush()
        except OSError:
            pass  # the client hung up
        finally:
            self.finished.set()

    def _trickle(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        for byte in data:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            self.sent += 1
            time.sleep(STEP_S)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["body", "headers"])
def trickle(request: pytest.FixtureRequest) -> Iterator[Trickle]:
    server = Trickle(request.param)
    yield server
    server.close()


def api_for(base: str, deadline_s: float = 1.0, **settings: object) -> SpotifyApi:
    values: dict[str, object] = {
        "spotify_api_base": f"{base}/v1/",
        "spotify_access_token": SecretStr("t"),
        "spotify_deadline_s": deadline_s,
    }
    values.update(settings)
    return SpotifyApi(Settings(**values), RetryPolicy(max_retries=1, backoff_s=0))  # type: ignore[arg-type]


def test_an_answer_that_trickles_stops_at_the_deadline(trickle: Trickle) -> None:
    api = api_for(trickle.base)
    with pytest.raises(SourceError) as caught:
        api.get("track x", api.sp.track, "x")
    message = str(caught.value)
    assert f"Spotify request {trickle.base}/v1/tracks/x (track x)" in message
    assert "within its 1 s deadline (RECSYS_SPOTIFY_DEADLINE_S)" in message
    assert trickle.finished.wait(30)
    assert 0 < trickle.sent < 30  # the client hung up long before the whole answer came


def test_the_same_answer_arrives_within_a_longer_deadline() -> None:
    server = Trickle("body")
    try:
        api = api_for(server.base, deadline_s=120)
        assert api.get("track x", api.sp.track, "x") == TRACK
    finally:
        server.close()


def test_the_token_endpoint_has_the_deadline_and_is_named() -> None:
    server = Trickle("body")
    try:
        api = api_for(
            "http://127.0.0.1:9",
            spotify_access_token=None,
            spotify_client_id="id",
            spotify_client_secret=SecretStr("secret"),
            spotify_token_url=f"{server.base}/api/token",
        )
        with pytest.raises(
            SourceError, match=rf"Spotify request {server.base}/api/token \(track x\) was not"
        ):
            api.get("track x", api.sp.track, "x")
    finally:
        server.close()


def test_the_cli_says_so_in_one_line(trickle: Trickle, tmp_path: Path) -> None:
    env = {
        "RECSYS_DATABASE_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "RECSYS_SPOTIFY_API_BASE": f"{trickle.base}/v1/",
        "RECSYS_SPOTIFY_ACCESS_TOKEN": "t",
        "RECSYS_SPOTIFY_DEADLINE_S": "1.5",
    }
    assert recsys("db", "upgrade", env=env).returncode == 0
    line = one_line_error(recsys("ingest", "spotify", "--track", "x", env=env))
    assert line.startswith(f"error: Spotify request {trickle.base}/v1/tracks/x (track x) was not answered")
    assert "1.5 s deadline" in line


def test_rate_limit_waits_do_not_count_against_the_deadline(httpserver: HTTPServer) -> None:
    answers = iter([(429, {"Retry-After": "2"}), (200, {})])

    def respond(_request: object) -> object:
        from werkzeug import Response

        status, headers = next(answers)
        return Response(json.dumps(TRACK), status=status, headers=headers, content_type="application/json")

    httpserver.expect_request("/v1/tracks/x").respond_with_handler(respond)
    api = SpotifyApi(
        Settings(spotify_api_base=httpserver.url_for("/v1/"), spotify_access_token=SecretStr("t")),
        RetryPolicy(deadline_s=1, max_wait_s=5),  # the real sleep: 2 s, longer than the deadline
    )
    assert api.get("track x", api.sp.track, "x") == TRACK
    assert api.policy.waits == [2.0]


# --------------------------------------------------------------------------- Retry-After


def rate_limited(httpserver: HTTPServer, retry_after: str) -> None:
    httpserver.expect_request("/v1/tracks/x").respond_with_json(
        {"error": {"status": 429, "message": "API rate limit exceeded"}},
        status=429,
        headers={"Retry-After": retry_after},
    )


def test_a_long_retry_after_is_reported_as_the_server_sent_it(httpserver: HTTPServer) -> None:
    rate_limited(httpserver, "100000")
    slept: list[float] = []
    api = SpotifyApi(
        Settings(spotify_api_base=httpserver.url_for("/v1/"), spotify_access_token=SecretStr("t")),
        RetryPolicy(max_wait_s=30, sleep=slept.append),
    )
    with pytest.raises(
        SourceError, match=r"asks to wait 100000 s \(Retry-After\), more than the allowed 30 s"
    ):
        api.get("track x", api.sp.track, "x")
    assert slept == []


@pytest.mark.parametrize("value", ["soon-ish", "-5", "1.5", ""])
def test_an_invalid_retry_after_is_named_and_the_default_backoff_waited(
    httpserver: HTTPServer, value: str
) -> None:
    rate_limited(httpserver, value)
    slept: list[float] = []
    api = SpotifyApi(
        Settings(spotify_api_base=httpserver.url_for("/v1/"), spotify_access_token=SecretStr("t")),
        RetryPolicy(max_retries=2, backoff_s=0.5, sleep=slept.append),
    )
    with pytest.raises(SourceError) as caught:
        api.get("track x", api.sp.track, "x")
    message = str(caught.value)
    assert "still answering 429 for track x after 2 retries" in message
    assert f"its Retry-After {value!r} is invalid: the default backoff was waited instead" in message
    assert "empty body" not in message
    assert slept == [0.5, 1.0] and api.policy.waits == []


def test_retry_after_values() -> None:
    assert parse_retry_after("100000") == 100000.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412500.0) == 0.0
    for bad in ("soon-ish", "-5", "1.5", "", "0x10", "Wed, 32 Oct 2015"):
        assert parse_retry_after(bad) is None, bad


# --------------------------------------------------------------------------- token endpoint


def test_an_unreachable_token_endpoint_is_named(httpserver: HTTPServer) -> None:
    cfg = Settings(
        spotify_api_base=httpserver.url_for("/v1/"),
        spotify_token_url="http://127.0.0.1:9/api/token",
        spotify_access_token=None,
        spotify_client_id="id",
        spotify_client_secret=SecretStr("secret"),
    )
    api = SpotifyApi(cfg, RetryPolicy(max_retries=0))
    with pytest.raises(SourceError) as caught:
        api.get("track x", api.sp.track, "x")
    message = str(caught.value)
    assert message.startswith(
        "cannot get a token from the Spotify token endpoint http://127.0.0.1:9/api/token"
    )
    assert "Web API" not in message and httpserver.url_for("/v1/") not in message


def test_a_failing_token_endpoint_is_named(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/token", method="POST").respond_with_data("down", status=503)
    cfg = Settings(
        spotify_api_base=httpserver.url_for("/v1/"),
        spotify_token_url=httpserver.url_for("/api/token"),
        spotify_access_token=None,
        spotify_client_id="id",
        spotify_client_secret=SecretStr("secret"),
    )
    api = SpotifyApi(cfg, RetryPolicy(max_retries=1, backoff_s=0))
    with pytest.raises(SourceError, match=r"Spotify token endpoint http://localhost:\d+/api/token") as caught:
        api.get("track x", api.sp.track, "x")
    assert "Web API" not in str(caught.value)


def test_an_invalid_retry_after_then_an_answer_is_reported(httpserver: HTTPServer) -> None:
    answers = iter([(429, {"Retry-After": "soon-ish"}), (200, {})])

    def respond(_request: object) -> object:
        from werkzeug import Response

        status, headers = next(answers)
        return Response(json.dumps(TRACK), status=status, headers=headers, content_type="application/json")

    httpserver.expect_request("/v1/tracks/x").respond_with_handler(respond)
    slept: list[float] = []
    api = SpotifyApi(
        Settings(spotify_api_base=httpserver.url_for("/v1/"), spotify_access_token=SecretStr("t")),
        RetryPolicy(backoff_s=0.5, sleep=slept.append),
    )
    assert api.get("track x", api.sp.track, "x") == TRACK
    assert slept == [0.5] and invalid_retry_after_note(api.policy) == (
        "spotify: 1 rate-limit answer(s) with an invalid Retry-After ('soon-ish'): waited the default backoff "
        "instead"
    )
