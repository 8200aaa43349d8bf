"""The server backend's connection handling, against a stand-in HTTP server (no Qdrant needed)."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from recsys.errors import VectorStoreError
from recsys.vectorstore.client import ClientOptions, ClientStore

EMPTY = {"result": {"collections": []}, "status": "ok", "time": 0.0}
ALIASES = {
    "result": {"aliases": [{"alias_name": "tracks", "collection_name": "tracks_v3"}]},
    "status": "ok",
    "time": 0.0,
}


def flaky(failures: int):
    calls = {"n": 0}

    def handler(request):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= failures:
            return Response("overloaded", status=503)
        return Response(__import__("json").dumps(EMPTY), content_type="application/json")

    return handler, calls


def test_transient_errors_are_retried(httpserver: HTTPServer) -> None:
    handler, calls = flaky(2)
    httpserver.expect_request("/collections").respond_with_handler(handler)
    httpserver.expect_request("/aliases").respond_with_json(ALIASES)
    store = ClientStore(httpserver.url_for("/").rstrip("/"), options=ClientOptions(retries=3, backoff_s=0.01))
    assert calls["n"] == 3
    assert store.current_version("tracks") == 3
    assert store.collections() == ["tracks"]


def test_retries_run_out_with_one_line_naming_the_url(httpserver: HTTPServer) -> None:
    handler, _ = flaky(10)
    httpserver.expect_request("/collections").respond_with_handler(handler)
    url = httpserver.url_for("/").rstrip("/")
    with pytest.raises(VectorStoreError) as err:
        ClientStore(url, options=ClientOptions(retries=1, backoff_s=0.01))
    assert str(err.value).startswith(f"Qdrant at {url} refused the request")
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_api_key_is_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/collections", headers={"api-key": "s3cret"}).respond_with_json(EMPTY)
    ClientStore(httpserver.url_for("/").rstrip("/"), api_key="s3cret")
