"""The server backend's connection handling, against a stand-in HTTP server (no Qdrant needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from recsys.config import load_settings
from recsys.errors import VectorStoreError
from recsys.vectorstore import open_store
from recsys.vectorstore.client import ClientOptions, ClientStore
from tests.vectorstore.conftest import SPEC

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
        return Response(json.dumps(EMPTY), content_type="application/json")

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


def test_a_new_collection_asks_the_cluster_for_its_shards_replicas_and_write_consistency(
    httpserver: HTTPServer,
) -> None:
    sent: list[tuple[str, str, dict]] = []

    def answer(request):  # type: ignore[no-untyped-def]
        body = json.loads(request.data or b"null")
        sent.append((request.method, request.path, body))
        if request.path == "/collections" and request.method == "GET":
            result: object = {"collections": []}
        elif request.path == "/aliases":
            result = {"aliases": []}
        elif request.path.endswith("/index"):
            result = {"operation_id": 1, "status": "completed"}
        else:
            result = True
        return Response(
            json.dumps({"result": result, "status": "ok", "time": 0.0}), content_type="application/json"
        )

    httpserver.expect_request(re.compile(".*")).respond_with_handler(answer)
    cluster = ClientOptions(shard_number=6, replication_factor=3, write_consistency_factor=2, retries=0)
    store = ClientStore(httpserver.url_for("/").rstrip("/"), options=cluster)
    store._create_version(SPEC)  # the request every new version (rebuild or revision) starts with
    created = [body for method, path, body in sent if method == "PUT" and path == "/collections/items_v1"]
    assert len(created) == 1
    assert (
        created[0]["shard_number"],
        created[0]["replication_factor"],
        created[0]["write_consistency_factor"],
    ) == (
        6,
        3,
        2,
    )
    assert {path for method, path, _ in sent if path.endswith("/index")} == {"/collections/items_v1/index"}


def test_the_settings_reach_the_server_backend(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        vector_store=":memory:",
        qdrant_shards=4,
        qdrant_replicas=2,
        qdrant_write_consistency=2,
    )
    store = open_store(settings)
    assert isinstance(store, ClientStore)
    assert (
        store.options.shard_number,
        store.options.replication_factor,
        store.options.write_consistency_factor,
    ) == (4, 2, 2)
