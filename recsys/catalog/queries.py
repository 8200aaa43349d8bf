"""Read-side queries over the catalog, shared by the CLI, the UI, the models and the evaluation."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, Select, func, select

from recsys.catalog.reads import read_frame
from recsys.catalog.schema import (
    DEFAULT_NAMESPACE,
    Album,
    Artist,
    Feedback,
    IngestReject,
    Listen,
    Playlist,
    PlaylistTrack,
    Track,
)

STATS_KEYS = (
    "playlists",
    "playlist_tracks",
    "tracks",
    "artists",
    "albums",
    "listens",
    "rejects",
    "feedback",
)


def catalog_stats(conn: Connection, *, namespace: str = DEFAULT_NAMESPACE) -> dict[str, int]:
    """Row counts of the catalog; playlists and their entries are those of ``namespace``.

    ``feedback`` counts the stored opinions of tracks, likes and dislikes together
    (``recsys.catalog.feedback.feedback_counts`` tells them apart).
    """

    def count(stmt: Select[Any]) -> int:
        return int(conn.execute(stmt).scalar_one())

    return {
        "playlists": count(select(func.count()).select_from(Playlist).where(Playlist.namespace == namespace)),
        "playlist_tracks": count(
            select(func.count())
            .select_from(PlaylistTrack)
            .join(Playlist, Playlist.id == PlaylistTrack.playlist_id)
            .where(Playlist.namespace == namespace)
        ),
        "tracks": count(select(func.count()).select_from(Track)),
        "artists": count(select(func.count()).select_from(Artist)),
        "albums": count(select(func.count()).select_from(Album)),
        "listens": count(select(func.count()).select_from(Listen)),
        "rejects": count(select(func.count()).select_from(IngestReject)),
        "feedback": count(select(func.count()).select_from(Feedback)),
    }


def reject_reasons(conn: Connection, *, limit: int = 20) -> list[tuple[str, str, int]]:
    """The most common reject reasons: (source, reason, count)."""
    rows = conn.execute(
        select(IngestReject.source, IngestReject.reason, func.count())
        .group_by(IngestReject.source, IngestReject.reason)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [(r[0], r[1], int(r[2])) for r in rows]


ENTRIES: dict[str, Any] = {"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64}
PLAYLISTS: dict[str, Any] = {
    "playlist_id": pl.Int64,
    "source_key": pl.String,
    "name": pl.String,
    "name_key": pl.String,
    "num_tracks": pl.Int64,
}
TRACKS: dict[str, Any] = {
    "track_id": pl.Int64,
    "source_key": pl.String,
    "title": pl.String,
    "artist_id": pl.Int64,
    "artist_name": pl.String,
    "album_id": pl.Int64,
    "duration_ms": pl.Int64,
    "recording_key": pl.String,
}


def entries_query(namespace: str = DEFAULT_NAMESPACE) -> Select[*tuple[Any, ...]]:
    return (
        select(PlaylistTrack.playlist_id, PlaylistTrack.position, PlaylistTrack.track_id)
        .join(Playlist, Playlist.id == PlaylistTrack.playlist_id)
        .where(Playlist.namespace == namespace)
        .order_by(PlaylistTrack.playlist_id, PlaylistTrack.position)
    )


def playlists_query(namespace: str = DEFAULT_NAMESPACE) -> Select[*tuple[Any, ...]]:
    return select(
        Playlist.id, Playlist.source_key, Playlist.name, Playlist.name_key, Playlist.num_tracks
    ).where(Playlist.namespace == namespace)


def tracks_query() -> Select[*tuple[Any, ...]]:
    return select(
        Track.id,
        Track.source_key,
        Track.title,
        Track.artist_id,
        Track.artist_name,
        Track.album_id,
        Track.duration_ms,
        Track.recording_key,
    )


def playlist_entries(engine: Engine, *, namespace: str = DEFAULT_NAMESPACE) -> pl.DataFrame:
    """Every entry of every playlist in ``namespace``: (playlist_id, position, track_id), in order.

    Read in batches (``recsys.catalog.reads``): memory stays near the size of the three columns.
    """
    return read_frame(engine, entries_query(namespace), ENTRIES)


def playlists_frame(engine: Engine, *, namespace: str = DEFAULT_NAMESPACE) -> pl.DataFrame:
    """Playlists of ``namespace`` with their names: (playlist_id, source_key, name, name_key, num_tracks)."""
    return read_frame(engine, playlists_query(namespace), PLAYLISTS)


def tracks_frame(engine: Engine) -> pl.DataFrame:
    """Every track: (track_id, source_key, title, artist_id, artist_name, album_id, duration_ms, recording_key)."""
    return read_frame(engine, tracks_query(), TRACKS)
