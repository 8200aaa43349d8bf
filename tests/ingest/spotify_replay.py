"""Replays the real Spotify Web API answers in ../shared/data/spotify_api/responses over real HTTP.

A ``Replay`` serves the recorded files from a pytest-httpserver (a real local HTTP
server), with every ``https://api.spotify.com/v1/`` link rewritten to the server, so
spotipy follows ``next`` pages to it. ``paged`` splits a recorded list into pages whose
``next`` links point at the server; requests nobody planned answer 404 like Spotify.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from recsys.config import SPOTIFY_API_BASE, Settings

NOT_FOUND = {"error": {"status": 404, "message": "Resource not found"}}
FORBIDDEN = {"error": {"status": 403, "message": "Forbidden"}}


def first_json(text: str) -> Any:
    """The first JSON value in ``text`` (find_album.txt has trailing garbage after it)."""
    value, _ = json.JSONDecoder().raw_decode(text)
    return value


class Replay:
    def __init__(self, server: HTTPServer, responses: Path) -> None:
        self.server = server
        self.responses = responses
        self.base = server.url_for("/v1/")
        self.requests: list[str] = []  # "GET /v1/… ?query" in the order served by planned handlers

    # ------------------------------------------------------------------ files

    def text(self, name: str) -> str:
        return (self.responses / name).read_text(encoding="utf-8").replace(SPOTIFY_API_BASE, self.base)

    def doc(self, name: str) -> Any:
        return first_json(self.text(name))

    # ------------------------------------------------------------------ serving

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "spotify_api_base": self.base,
            "spotify_token_url": self.server.url_for("/api/token"),
            "spotify_access_token": SecretStr("replay-user-token"),
        }
        values.update(overrides)
        return Settings(**values)

    def handle(self, path: str, respond: Callable[[Request], Response], method: str = "GET") -> None:
        def logged(request: Request) -> Response:
            self.requests.append(f"{request.method} {request.path}?{request.query_string.decode()}")
            return respond(request)

        self.server.expect_request(f"/v1/{path}", method=method).respond_with_handler(logged)

    def serve(self, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Serve ``body`` (a file name in the responses folder, raw text or a JSON value) at ``/v1/<path>``."""
        if isinstance(body, str) and (self.responses / body).is_file():
            text = self.text(body)
        elif isinstance(body, str):
            text = body
        else:
            text = json.dumps(body)
        self.handle(
            path,
            lambda _request: Response(text, status=status, headers=headers, content_type="application/json"),
        )

    def paged(self, path: str, page: dict[str, Any], size: int) -> None:
        """Serve the items of ``page`` at ``/v1/<path>`` in pages of ``size``, by ``offset``."""
        items = page["items"]

        def respond(request: Request) -> Response:
            offset = int(request.args.get("offset", 0))
            chunk = items[offset : offset + size]
            later = offset + size < len(items)
            body = page | {
                "items": chunk,
                "offset": offset,
                "limit": size,
                "total": len(items),
                "href": f"{self.base}{path}?offset={offset}&limit={size}",
                "next": f"{self.base}{path}?offset={offset + size}&limit={size}" if later else None,
            }
            return Response(json.dumps(body), content_type="application/json")

        self.handle(path, respond)

    def first_page(self, path: str, page: dict[str, Any], size: int) -> dict[str, Any]:
        """The first ``size`` items of ``page`` as embedded in a parent answer, ``next`` pointing at ``paged``."""
        return page | {
            "items": page["items"][:size],
            "total": len(page["items"]),
            "next": f"{self.base}{path}?offset={size}&limit={size}" if len(page["items"]) > size else None,
        }

    def refuse_everything_else(self) -> None:
        """Answer 404 (Spotify's own body) to every request no handler planned; register last."""
        self.server.expect_request(re.compile("^/v1/.*")).respond_with_json(NOT_FOUND, status=404)
