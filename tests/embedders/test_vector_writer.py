"""The embedding jobs' writer: many batches to one store write, and rows only for vectors the store holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.embed.writer import VectorWriter
from recsys.errors import NotFoundError
from recsys.vectorstore.base import Point
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import TRACKS, tracks_spec
from recsys.vectorstore.edge import EdgeStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def vectors(n: int, value: float) -> np.ndarray:
    return np.full((n, 4), value, dtype=np.float32)


def test_batches_wait_for_the_interval_and_go_as_one_write(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "store")
    store.ensure_collection(tracks_spec({"audio": 4}))
    before = store.current_version(TRACKS)
    clock = Clock()
    recorded: list[tuple[int, int]] = []  # (batch, points the store held when its rows were written)

    def record(batch: int):
        return lambda conn: recorded.append((batch, store.count(TRACKS)))

    writer = VectorWriter(sqlite_engine, store, every_s=30.0, clock=clock)
    writer.add("audio", [1, 2], vectors(2, 1.0), record(0))
    clock.now = 10.0
    writer.add("audio", [3], vectors(1, 2.0), record(1))
    assert store.count(TRACKS) == 0 and recorded == [] and store.current_version(TRACKS) == before
    clock.now = 31.0
    writer.add("audio", [4, 5], vectors(2, 3.0), record(2))
    assert store.count(TRACKS) == 5
    assert recorded == [(0, 5), (1, 5), (2, 5)]  # every row after the store held every vector
    assert store.current_version(TRACKS) == before + 1  # one new version for the three batches
    writer.add("audio", [6], vectors(1, 4.0), record(3))
    assert store.count(TRACKS) == 5
    writer.flush()
    assert store.count(TRACKS) == 6 and recorded[-1] == (3, 6)
    assert store.current_version(TRACKS) == before + 2
    writer.flush()  # nothing waiting: no write
    assert store.current_version(TRACKS) == before + 2 and writer.commits == 2
    store.close()


def test_a_full_buffer_is_written_before_the_interval(sqlite_engine: sa.Engine) -> None:
    store = ClientStore(":memory:")
    store.ensure_collection(tracks_spec({"audio": 4}))
    writer = VectorWriter(sqlite_engine, store, every_s=3600.0, max_points=4, clock=Clock())
    writer.add("audio", [1, 2, 3], vectors(3, 1.0), lambda conn: None)
    assert store.count(TRACKS) == 0
    writer.add("audio", [4, 5], vectors(2, 1.0), lambda conn: None)
    assert store.count(TRACKS) == 5 and writer.points == 0


def test_other_vectors_and_payload_of_a_point_are_kept(sqlite_engine: sa.Engine) -> None:
    store = ClientStore(":memory:")
    store.ensure_collection(tracks_spec({"audio": 4, "audio_dsp": 4}))
    store.upsert(TRACKS, [Point(id=7, vectors={"audio_dsp": [1.0, 0, 0, 0]}, payload={"title": "kept"})])
    writer = VectorWriter(sqlite_engine, store, every_s=0.0)
    audio = np.array([[0, 1.0, 0, 0], [0, 0, 1.0, 0]], dtype=np.float32)  # unit length: stored as given
    writer.add("audio", [7, 8], audio, lambda conn: None, extra={"stamp": "m1"})
    [seven, eight] = store.retrieve(TRACKS, [7, 8], with_vectors=True)
    assert seven.vectors["audio_dsp"] == [1.0, 0, 0, 0] and seven.vectors["audio"] == [0, 1.0, 0, 0]
    assert seven.payload == {"title": "kept", "stamp": "m1"}
    assert set(eight.vectors) == {"audio"} and eight.payload == {"stamp": "m1"}


def test_a_failed_write_keeps_the_batches_and_writes_no_rows(sqlite_engine: sa.Engine) -> None:
    store = ClientStore(":memory:")  # no collection yet: the write fails
    rows: list[int] = []
    writer = VectorWriter(sqlite_engine, store, every_s=3600.0, clock=Clock())
    writer.add("audio", [1], vectors(1, 1.0), lambda conn: rows.append(1))
    with pytest.raises(NotFoundError):
        writer.flush()
    assert rows == [] and writer.points == 1  # still waiting, to be written again
    store.ensure_collection(tracks_spec({"audio": 4}))
    writer.flush()
    assert rows == [1] and store.count(TRACKS) == 1
