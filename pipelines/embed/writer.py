"""Vectors of an embedding job go to the store, and their catalog rows, in commits of many batches.

On the embedded store every write publishes a new version of the collection, a copy of
the serving one plus the change, so that readers in other processes never see a
half-written shard (see ``recsys.vectorstore.edge``). Writing each model batch would
copy the whole collection once per batch. The writer gathers the vectors of finished
batches and writes them at most every :data:`EVERY_S` seconds (or when
:data:`MAX_POINTS` are waiting), then commits their ``track_embedding`` rows: rows are
only ever written for vectors the store already holds.

A run that fails or is interrupted writes what its finished batches made before it ends
(:meth:`VectorWriter.flush` in the job's error path); a run killed outright loses the
waiting vectors, which have no rows either, so the next run embeds them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from pipelines.index import track_payloads
from recsys.vectorstore.base import Draft, Point, VectorStore
from recsys.vectorstore.collections import TRACKS

EVERY_S = 30.0
MAX_POINTS = 4096


@dataclass
class _Waiting:
    name: str
    track_ids: list[int]
    vectors: np.ndarray
    extra: Mapping[str, Any] | None
    record: Callable[[sa.Connection], None]


class VectorWriter:
    """Named track vectors, written to ``tracks`` together with the catalog rows that say so."""

    def __init__(
        self,
        engine: sa.Engine,
        store: VectorStore,
        *,
        every_s: float = EVERY_S,
        max_points: int = MAX_POINTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.store = engine, store
        self.every_s, self.max_points, self.clock = every_s, max_points, clock
        self.waiting: list[_Waiting] = []
        self.points = 0
        self.since = clock()
        self.commits = 0

    def add(
        self,
        name: str,
        track_ids: list[int],
        vectors: np.ndarray,
        record: Callable[[sa.Connection], None],
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one batch's vectors; ``record`` writes its catalog rows once the store holds them."""
        self.waiting.append(_Waiting(name, track_ids, vectors, extra, record))
        self.points += len(track_ids)
        if self.points >= self.max_points or self.clock() - self.since >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write the waiting vectors in one store write, then their rows in one transaction."""
        if self.waiting:
            # one revision: the points' other vectors are read from the draft itself (a copy of
            # the serving version), so the embedded store opens the collection once per write;
            # the job made the collection with its vectors' sizes: a missing one is an error
            self.store.spec(TRACKS)
            with self.store.revise(TRACKS) as draft:
                points: dict[int, Point] = {}
                for item in self.waiting:
                    for point in _points(self.engine, draft, item, points):
                        points[int(point.id)] = point
                draft.upsert(list(points.values()))
            with self.engine.begin() as conn:
                for item in self.waiting:
                    item.record(conn)
            self.commits += 1
        self.waiting, self.points, self.since = [], 0, self.clock()


@contextmanager
def writing(
    engine: sa.Engine,
    store: VectorStore,
    *,
    every_s: float = EVERY_S,
    failed: Callable[[BaseException], None],
) -> Iterator[VectorWriter]:
    """A job's writer: what is still waiting is written when the job ends, and also when it
    fails, before ``failed`` records the failure, so the finished batches are kept."""
    writer = VectorWriter(engine, store, every_s=every_s)
    try:
        yield writer
        writer.flush()
    except BaseException as exc:
        try:
            writer.flush()
        finally:
            failed(exc)
        raise


def _points(engine: sa.Engine, draft: Draft, item: _Waiting, written: dict[int, Point]) -> list[Point]:
    """Points holding ``item``'s vectors beside the other vectors and payload each already has
    (in the store, or waiting in this write); the payload is refreshed from the catalog."""
    missing = [track_id for track_id in item.track_ids if track_id not in written]
    existing = {int(r.id): r for r in draft.retrieve(missing, with_vectors=True)}
    payloads = track_payloads(engine, item.track_ids)
    out = []
    for track_id, vector in zip(item.track_ids, item.vectors, strict=True):
        old = written.get(track_id) or existing.get(track_id)
        kept: dict[str, Any] = dict(old.vectors) if old is not None else {}
        kept[item.name] = np.asarray(vector, dtype=np.float32)
        payload = {
            **(old.payload if old is not None else {}),
            **payloads.get(track_id, {}),
            **(item.extra or {}),
        }
        out.append(Point(id=track_id, vectors=kept, payload=payload))
    return out
