"""Rebuilding collections from the catalog, carrying stored vectors over, and the `recsys index` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.index import index_status, rebuild_from_catalog
from recsys.catalog.schema import Playlist, Track
from recsys.config import Settings
from recsys.errors import VectorStoreError
from recsys.vectorstore import Filter, Match, MatchAny, Point, Range, open_store
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import tracks_spec
from recsys.vectorstore.edge import EdgeStore
from recsys.vectorstore.rebuild import rebuild_collection

TRACKS = [
    # id, title, artist, year, genres, cultures, duration
    (1, "Raga Yaman", "Ravi", 1968, ["hindustani"], ["india"], 1_200_000),
    (2, "So What", "Miles", 1959, ["jazz"], ["usa"], 545_000),
    (3, "Taksim", "Ney", 2001, ["makam", "folk"], ["turkey"], 300_000),
    (4, "Kind of Blue", "Miles", 1959, ["jazz"], [], None),
]


def fill_catalog(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Track),
            [
                {
                    "id": i,
                    "source_key": f"t:{i}",
                    "title": title,
                    "title_key": title.lower(),
                    "artist_name": artist,
                    "recording_key": f"r:{i}",
                    "year": year,
                    "genres": genres,
                    "cultures": cultures,
                    "duration_ms": duration,
                }
                for i, title, artist, year, genres, cultures, duration in TRACKS
            ],
        )
        conn.execute(
            sa.insert(Playlist),
            [
                {
                    "id": 10,
                    "namespace": "catalog",
                    "source_key": "p:10",
                    "name": "Ragas",
                    "name_key": "ragas",
                    "num_tracks": 1,
                },
                {
                    "id": 11,
                    "namespace": "catalog",
                    "source_key": "p:11",
                    "name": "Cool",
                    "name_key": "cool",
                    "num_tracks": 2,
                },
            ],
        )


def test_catalog_rebuild_carries_vectors_over(catalog_engine: sa.Engine, fast_dir: Path) -> None:
    fill_catalog(catalog_engine)
    store = EdgeStore(fast_dir / "vectors")
    first = rebuild_from_catalog(catalog_engine, store, "tracks")
    assert (first.version, first.points) == (1, 4)
    [miles] = store.retrieve("tracks", [2])
    assert miles.payload == {
        "track_id": 2, "title": "So What", "artist": "Miles", "year": 1959,
        "genres": ["jazz"], "cultures": ["usa"], "duration_ms": 545_000,
    }  # fmt: skip
    assert store.count("tracks", filter=Filter.where(Match("genres", "makam"))) == 1
    assert store.count("tracks", filter=Filter.where(Range("year", lt=1960))) == 2
    assert store.count("tracks", filter=Filter.where(MatchAny("cultures", ("india", "turkey")))) == 2

    # An embedder writes audio vectors for three tracks (its model makes 8-d vectors).
    spec = tracks_spec({"audio": 8})
    rng = np.random.default_rng(3)
    audio = {i: rng.normal(size=8).astype(np.float32) for i in (1, 2, 3)}
    points = [
        Point(p.id, {"audio": audio[p.id]} if p.id in audio else {}, p.payload)
        for p in store.scroll("tracks")
    ]
    written = rebuild_collection(store, "tracks", points, spec=spec)
    assert written.written == {"audio": 3} and written.version == 2

    # The catalog loses a track; the nightly rebuild keeps the audio vectors of the rest.
    with catalog_engine.begin() as conn:
        conn.execute(sa.delete(Track).where(Track.id == 3))
    again = rebuild_from_catalog(catalog_engine, store, "tracks")
    assert (again.version, again.points, again.carried, again.dropped_points) == (3, 3, {"audio": 2}, 1)
    assert store.spec("tracks").vector("audio").size == 8
    assert store.count("tracks", vector="audio") == 2
    hits = store.search("tracks", audio[2], using="audio", limit=2)
    assert hits[0].id == 2 and hits[0].payload["title"] == "So What"
    # Recommend from a track id never returns that track.
    assert 1 not in [h.id for h in store.recommend("tracks", using="audio", positive=[1])]

    playlists = rebuild_from_catalog(catalog_engine, store, "playlists")
    assert playlists.points == 2
    status = index_status(store)
    assert [c["name"] for c in status["collections"]] == ["playlists", "tracks"]
    assert status["collections"][1]["vectors"]["audio"] == {"size": 8, "distance": "cosine", "count": 2}
    store.close()


def test_a_model_that_changed_size_drops_its_old_vectors(fast_dir: Path) -> None:
    store = ClientStore(":memory:")
    spec = tracks_spec({"cf": 4})
    rebuild_collection(store, "tracks", [Point(1, {"cf": np.ones(4)}, {"track_id": 1})], spec=spec)
    report = rebuild_collection(store, "tracks", [Point(1, {}, {"track_id": 1})], spec=tracks_spec({"cf": 6}))
    assert report.dropped_vectors == 1 and report.carried == {}
    assert store.count("tracks", vector="cf") == 0


def test_a_model_stamp_travels_with_its_vector(fast_dir: Path) -> None:
    store = ClientStore(":memory:")
    first = [
        Point(1, {"music": np.ones(4)}, {"track_id": 1, "music_model": "m1"}),
        Point(2, {}, {"track_id": 2, "music_model": "stray"}),  # a stamp without its vector is not kept
    ]
    rebuild_collection(store, "tracks", first, spec=tracks_spec({"music": 4}))
    # Fresh catalog payloads carry no stamps: the carried vector brings its own.
    rebuild_collection(
        store, "tracks", [Point(1, {}, {"track_id": 1, "title": "new"}), Point(2, {}, {"track_id": 2})]
    )
    one, two = store.retrieve("tracks", [1, 2])
    assert one.payload == {"track_id": 1, "title": "new", "music_model": "m1"}
    assert two.payload == {"track_id": 2}
    # A model of another size: the old vector is dropped, and its stamp with it.
    rebuild_collection(store, "tracks", [Point(1, {}, {"track_id": 1})], spec=tracks_spec({"music": 6}))
    [one] = store.retrieve("tracks", [1])
    assert one.payload == {"track_id": 1} and store.count("tracks", vector="music") == 0


def test_open_store_picks_the_backend(fast_dir: Path) -> None:
    edge = open_store(Settings(data_dir=fast_dir))
    assert isinstance(edge, EdgeStore) and edge.root == (fast_dir / "vectors").resolve()
    memory = open_store(Settings(data_dir=fast_dir, vector_store=":memory:"))
    assert isinstance(memory, ClientStore) and not memory.remote
    edge.close()
    memory.close()


def test_unreachable_server_is_one_line_naming_the_url(fast_dir: Path) -> None:
    url = "http://127.0.0.1:9"  # the discard port: nothing listens there
    with pytest.raises(VectorStoreError, match=r"Qdrant at http://127\.0\.0\.1:9 unreachable"):
        open_store(Settings(data_dir=fast_dir, vector_store=url, qdrant_retries=0, qdrant_timeout_s=2))


def test_index_commands(sqlite_engine: sa.Engine, sqlite_url: str, fast_dir: Path) -> None:
    fill_catalog(sqlite_engine)
    env = {"RECSYS_DATA_DIR": str(fast_dir / "data"), "RECSYS_DATABASE_URL": sqlite_url}
    runner = CliRunner()
    empty = runner.invoke(app, ["index", "status"], env=env)
    assert empty.exit_code == 0 and "no collections yet" in empty.output
    built = runner.invoke(app, ["index", "rebuild", "--collection", "tracks"], env=env)
    assert built.exit_code == 0, built.output
    assert "tracks: version 1 published with 4 points" in built.output
    status = runner.invoke(app, ["index", "status", "--json"], env=env)
    state = json.loads(status.output)
    [tracks] = state["collections"]
    assert (tracks["version"], tracks["points"], tracks["vectors"]["audio"]["count"]) == (1, 4, 0)
    down = runner.invoke(
        app,
        ["index", "status"],
        env={**env, "RECSYS_VECTOR_STORE": "http://127.0.0.1:9", "RECSYS_QDRANT_RETRIES": "0"},
    )
    assert down.exit_code == 1
    assert down.output.strip().splitlines() == [down.output.strip()] and "127.0.0.1:9" in down.output
