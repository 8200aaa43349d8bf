"""The index job: turn the catalog into vector-store points and rebuild a collection from them.

Payloads come from the catalog (tracks: id, title, artist, artist id, year, genres,
cultures, duration; playlists: id, name, namespace, number of tracks); vectors already
in the current version are carried over by :func:`recsys.vectorstore.rebuild.rebuild_collection`,
so embedders that wrote vectors keep them across a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from recsys.catalog.schema import Playlist, Track
from recsys.vectorstore.base import DEFAULT_BATCH, Point, VectorStore
from recsys.vectorstore.collections import PLAYLISTS, SPECS, TRACKS
from recsys.vectorstore.rebuild import RebuildReport, rebuild_collection, target_spec

STREAM_ROWS = 5_000


def _clean(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None and v != []}


_TRACK_COLUMNS = (
    Track.id,
    Track.title,
    Track.artist_name,
    Track.artist_id,
    Track.year,
    Track.genres,
    Track.cultures,
    Track.duration_ms,
)


def _track_payload(row: Any) -> dict[str, Any]:
    return _clean(
        {
            "track_id": row.id,
            "title": row.title,
            "artist": row.artist_name,
            "artist_id": row.artist_id,
            "year": row.year,
            "genres": list(row.genres or []),
            "cultures": list(row.cultures or []),
            "duration_ms": row.duration_ms,
        }
    )


def track_points(engine: Engine) -> Iterator[Point]:
    """One point per catalog track (no vectors), in id order, streamed from the database."""
    stmt = select(*_TRACK_COLUMNS).order_by(Track.id)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=STREAM_ROWS).execute(stmt):
            yield Point(row.id, {}, _track_payload(row))


def track_payloads(engine: Engine, track_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The payloads of the given tracks, as :func:`track_points` writes them."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_TRACK_COLUMNS).where(Track.id.in_(track_ids))).all()
    return {int(row.id): _track_payload(row) for row in rows}


def playlist_points(engine: Engine) -> Iterator[Point]:
    """One point per catalog playlist (every namespace; no vectors), in id order."""
    stmt = select(Playlist.id, Playlist.name, Playlist.namespace, Playlist.num_tracks).order_by(Playlist.id)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=STREAM_ROWS).execute(stmt):
            payload = {
                "playlist_id": row.id,
                "name": row.name,
                "namespace": row.namespace,
                "num_tracks": row.num_tracks,
            }
            yield Point(row.id, {}, _clean(payload))


CATALOG_POINTS = {TRACKS: track_points, PLAYLISTS: playlist_points}


def rebuild_from_catalog(
    engine: Engine, store: VectorStore, name: str, *, batch_size: int = DEFAULT_BATCH
) -> RebuildReport:
    """Rebuild ``tracks`` or ``playlists`` from the catalog, carrying the current vectors over."""
    try:
        points = CATALOG_POINTS[name]
    except KeyError:
        raise ValueError(f"unknown collection {name!r}; known: {', '.join(sorted(CATALOG_POINTS))}") from None
    return rebuild_collection(store, name, points(engine), batch_size=batch_size)


def publish_vectors(
    engine: Engine,
    store: VectorStore,
    name: str,
    vector: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> RebuildReport:
    """Publish one named vector for catalog points as a new version of ``name``.

    Every catalog point is written with fresh payload; points listed in ``ids`` get
    ``vector`` from ``vectors`` (its size becomes the collection's size for that name),
    and the other vectors of the current version are carried over. Readers switch to
    the new version atomically; on failure the current version keeps serving.
    """
    if name not in CATALOG_POINTS:
        raise ValueError(f"unknown collection {name!r}; known: {', '.join(sorted(CATALOG_POINTS))}")
    by_id = {int(i): np.asarray(v, dtype=np.float32) for i, v in zip(ids, vectors, strict=True)}
    sizes = {**target_spec(store, name).sizes, vector: int(np.asarray(vectors).shape[1])}
    spec = SPECS[name](sizes)

    def points() -> Iterator[Point]:
        for point in CATALOG_POINTS[name](engine):
            value = by_id.get(int(point.id))
            yield point if value is None else Point(point.id, {**point.vectors, vector: value}, point.payload)

    return rebuild_collection(store, name, points(), spec=spec, batch_size=batch_size)


def index_status(store: VectorStore) -> dict[str, Any]:
    """Every collection of the store with its versions and counts per named vector."""
    return {
        "store": store.location,
        "backend": type(store).__name__,
        "collections": [store.describe(name).as_dict() for name in store.collections()],
    }
