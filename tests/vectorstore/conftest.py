"""A planted collection and a fixture that runs each contract test on every backend.

The backends: the embedded Qdrant Edge store, qdrant-client's local mode with a cluster's
settings, and a real Qdrant server or cluster where ``RECSYS_TEST_QDRANT_URL`` names one
(``RECSYS_TEST_QDRANT_API_KEY`` its key). The server's tests drop the collections they
made, and only those: point it at a server kept for tests all the same.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recsys.vectorstore import CollectionSpec, FieldType, Point, VectorSpec, VectorStore
from recsys.vectorstore.client import ClientOptions, ClientStore
from recsys.vectorstore.edge import EdgeStore

SPEC = CollectionSpec(
    "items",
    (VectorSpec("a", 8), VectorSpec("b", 4)),
    {"artist": FieldType.KEYWORD, "genres": FieldType.KEYWORD, "year": FieldType.INTEGER},
)
ARTISTS = ["ana", "ben", "cai", "dee"]
GENRES = ["rock", "jazz", "folk"]


def planted_points(n: int = 60, seed: int = 7) -> list[Point]:
    """Three tight clusters in ``a`` (ids 0-19, 20-39, 40-59) with cycling payloads.

    Every fifth point lacks the ``b`` vector; point ids are the integers 0..n-1.
    """
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:3] * 10.0
    points = []
    for i in range(n):
        a = centres[(i * 3) // n] + rng.normal(0, 0.3, 8).astype(np.float32)
        vectors: dict = {"a": a}
        if i % 5:
            vectors["b"] = rng.normal(size=4).astype(np.float32)
        payload = {
            "artist": ARTISTS[i % 4],
            "genres": [GENRES[i % 3], GENRES[(i + 1) % 3]] if i % 2 else [GENRES[i % 3]],
            "year": 1960 + i,
            "title": f"song {i}",
        }
        points.append(Point(i, vectors, payload))
    return points


# The contract runs against qdrant-client with a cluster's settings given: they reach every
# collection request (local mode has no shards to make of them; a server would).
CLUSTER = ClientOptions(shard_number=3, replication_factor=2, write_consistency_factor=2)
# A real server gets two shards, which a single node holds too; replicas need as many nodes.
SERVER = ClientOptions(shard_number=2, retries=1)


SERVER_URL = "RECSYS_TEST_QDRANT_URL"


def make_store(kind: str, root: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(root / "vectors")
    if kind == "server":
        url = os.environ.get(SERVER_URL)
        if not url:
            pytest.skip(f"no Qdrant server to test against: set {SERVER_URL} to one kept for tests")
        return ClientStore(url, api_key=os.environ.get("RECSYS_TEST_QDRANT_API_KEY"), options=SERVER)
    return ClientStore(":memory:", options=CLUSTER)


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory in memory (/dev/shm) when there is room, else ``tmp_path``.

    Qdrant Edge syncs to disk on every shard creation and index change; on a busy
    shared disk that is most of these tests' time, and durability is not what they test.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1 << 30:
        path = Path(tempfile.mkdtemp(prefix="recsys-vectors-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture(params=["edge", "client", "server"])
def store(request: pytest.FixtureRequest, fast_dir: Path) -> Iterator[VectorStore]:
    s = make_store(request.param, fast_dir)
    before = set(s.collections())
    yield s
    if request.param == "server":
        for name in set(s.collections()) - before:
            s.drop_collection(name)
    s.close()


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.ensure_collection(SPEC)
    store.upsert("items", planted_points(), batch_size=16)
    return store
