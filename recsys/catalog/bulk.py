"""Bulk, idempotent loading of normalised frames into the catalog.

Every load goes through the same two steps on both databases:

1. **stage**: the frame is written to a temporary table: ``COPY … FROM STDIN`` on
   PostgreSQL, batched ``executemany`` on SQLite;
2. **merge**: one ``INSERT … SELECT … ON CONFLICT`` per target table resolves the
   source keys to internal ids inside the database.

So memory does not grow with the catalog (no id maps in Python), a chunk is one
transaction (a crash loses only the uncommitted chunk), and loading the same
chunk twice changes nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

# The exact frames a source parser hands to the loader (column order matters for staging).
ARTISTS = {"source_key": pl.String, "name": pl.String, "name_key": pl.String, "spotify_uri": pl.String}
ALBUMS = {
    "source_key": pl.String,
    "title": pl.String,
    "artist_key": pl.String,
    "spotify_uri": pl.String,
    "release_year": pl.Int32,
    "album_type": pl.String,
}
TRACKS = {
    "source_key": pl.String,
    "spotify_uri": pl.String,
    "isrc": pl.String,
    "mbid": pl.String,
    "title": pl.String,
    "title_key": pl.String,
    "artist_key": pl.String,
    "artist_name": pl.String,
    "album_key": pl.String,
    "duration_ms": pl.Int64,
    "year": pl.Int32,
    "recording_key": pl.String,
}
TRACK_ARTISTS = {"track_key": pl.String, "position": pl.Int32, "artist_key": pl.String, "role": pl.String}
PLAYLISTS = {
    "source_key": pl.String,
    "name": pl.String,
    "name_key": pl.String,
    "description": pl.String,
    "owner": pl.String,
    "num_followers": pl.Int64,
    "collaborative": pl.Boolean,
    "modified_at": pl.Datetime("us", "UTC"),
    "num_tracks": pl.Int64,
    "batch_id": pl.Int64,
}
ENTRIES = {"playlist_key": pl.String, "position": pl.Int32, "track_key": pl.String}
REJECTS = {
    "reject_key": pl.String,
    "batch_id": pl.Int64,
    "source": pl.String,
    "location": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}

_SQL_TYPES = {
    pl.String: "TEXT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE PRECISION",
    pl.Boolean: "BOOLEAN",
}


def empty(schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """Select and cast ``frame`` to ``schema`` (missing columns become nulls)."""
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


@dataclass
class CatalogChunk:
    """Normalised, deduplicated frames for one transaction of catalog loading."""

    artists: pl.DataFrame = field(default_factory=lambda: empty(ARTISTS))
    albums: pl.DataFrame = field(default_factory=lambda: empty(ALBUMS))
    tracks: pl.DataFrame = field(default_factory=lambda: empty(TRACKS))
    track_artists: pl.DataFrame = field(default_factory=lambda: empty(TRACK_ARTISTS))
    playlists: pl.DataFrame = field(default_factory=lambda: empty(PLAYLISTS))
    entries: pl.DataFrame = field(default_factory=lambda: empty(ENTRIES))
    rejects: pl.DataFrame = field(default_factory=lambda: empty(REJECTS))


def _sql_type(dtype: Any) -> str:
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP WITH TIME ZONE"
    return _SQL_TYPES[dtype]


def stage(conn: Connection, name: str, frame: pl.DataFrame) -> int:
    """Write ``frame`` to a fresh temporary table ``name``; returns the row count."""
    dialect = conn.dialect.name
    columns = ", ".join(f"{col} {_sql_type(dtype)}" for col, dtype in frame.schema.items())
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    if dialect == "postgresql":
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
        if frame.height:
            buffer = io.BytesIO()
            frame.write_csv(
                buffer, include_header=False, null_value="\\N", datetime_format="%Y-%m-%dT%H:%M:%S%.f%z"
            )
            raw = conn.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {name} FROM STDIN (FORMAT csv, NULL '\\N')") as copy,
            ):
                copy.write(buffer.getvalue())
            conn.exec_driver_sql(f"ANALYZE {name}")
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns})")
        if frame.height:
            placeholders = ", ".join("?" for _ in frame.columns)
            rows = frame.with_columns(
                [
                    pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S%.f+00:00")
                    for c, t in frame.schema.items()
                    if isinstance(t, pl.Datetime)
                ]
            ).iter_rows()
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.executemany(f"INSERT INTO {name} VALUES ({placeholders})", rows)
    return frame.height


def _distinct(conn: Connection) -> str:
    return "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"


def merge_chunk(conn: Connection, chunk: CatalogChunk, *, namespace: str) -> dict[str, int]:
    """Merge one chunk into the catalog inside the caller's transaction; returns rows affected per table."""
    counts: dict[str, int] = {}
    nd = _distinct(conn)

    def run(sql: str, **params: Any) -> int:
        return conn.execute(text(sql), params).rowcount or 0

    if stage(conn, "s_artist", conform(chunk.artists, ARTISTS)):
        counts["artists"] = run(
            """INSERT INTO artist (source_key, name, name_key, spotify_uri)
               SELECT source_key, name, name_key, spotify_uri FROM s_artist WHERE true
               ON CONFLICT (source_key) DO UPDATE SET spotify_uri = excluded.spotify_uri
               WHERE artist.spotify_uri IS NULL AND excluded.spotify_uri IS NOT NULL"""
        )
    if stage(conn, "s_album", conform(chunk.albums, ALBUMS)):
        counts["albums"] = run(
            """INSERT INTO album (source_key, title, artist_id, spotify_uri, release_year, album_type)
               SELECT s.source_key, s.title, a.id, s.spotify_uri, s.release_year, s.album_type
               FROM s_album s LEFT JOIN artist a ON a.source_key = s.artist_key WHERE true
               ON CONFLICT (source_key) DO NOTHING"""
        )
    if stage(conn, "s_track", conform(chunk.tracks, TRACKS)):
        counts["tracks"] = run(
            """INSERT INTO track (source_key, spotify_uri, isrc, mbid, title, title_key, artist_id, artist_name,
                                   album_id, duration_ms, year, recording_key)
               SELECT s.source_key, s.spotify_uri, s.isrc, s.mbid, s.title, s.title_key, a.id, s.artist_name,
                      al.id, s.duration_ms, s.year, s.recording_key
               FROM s_track s
               LEFT JOIN artist a ON a.source_key = s.artist_key
               LEFT JOIN album al ON al.source_key = s.album_key
               WHERE true
               ON CONFLICT (source_key) DO UPDATE SET
                   album_id = COALESCE(track.album_id, excluded.album_id),
                   duration_ms = COALESCE(track.duration_ms, excluded.duration_ms),
                   isrc = COALESCE(track.isrc, excluded.isrc),
                   year = COALESCE(track.year, excluded.year)
               WHERE (track.album_id IS NULL AND excluded.album_id IS NOT NULL)
                  OR (track.duration_ms IS NULL AND excluded.duration_ms IS NOT NULL)
                  OR (track.isrc IS NULL AND excluded.isrc IS NOT NULL)
                  OR (track.year IS NULL AND excluded.year IS NOT NULL)"""
        )
    if stage(conn, "s_track_artist", conform(chunk.track_artists, TRACK_ARTISTS)):
        counts["track_artists"] = run(
            """INSERT INTO track_artist (track_id, position, artist_id, role)
               SELECT t.id, s.position, a.id, s.role FROM s_track_artist s
               JOIN track t ON t.source_key = s.track_key
               JOIN artist a ON a.source_key = s.artist_key WHERE true
               ON CONFLICT (track_id, position) DO NOTHING"""
        )
    if stage(conn, "s_playlist", conform(chunk.playlists, PLAYLISTS)):
        cols = [
            "name",
            "name_key",
            "description",
            "owner",
            "num_followers",
            "collaborative",
            "modified_at",
            "num_tracks",
        ]
        counts["playlists"] = run(
            f"""INSERT INTO playlist (namespace, source_key, {", ".join(cols)}, batch_id)
               SELECT :ns, source_key, {", ".join(cols)}, batch_id FROM s_playlist WHERE true
               ON CONFLICT (namespace, source_key) DO UPDATE SET
                   {", ".join(f"{c} = excluded.{c}" for c in cols)}, batch_id = excluded.batch_id
               WHERE {" OR ".join(f"playlist.{c} {nd} excluded.{c}" for c in cols)}""",
            ns=namespace,
        )
        # Entries of the playlists in this chunk are replaced as a whole: the chunk is their truth.
        run(
            """DELETE FROM playlist_track WHERE playlist_id IN (
                   SELECT p.id FROM playlist p JOIN s_playlist s
                   ON p.namespace = :ns AND p.source_key = s.source_key)""",
            ns=namespace,
        )
    if stage(conn, "s_entry", conform(chunk.entries, ENTRIES)):
        counts["playlist_tracks"] = run(
            """INSERT INTO playlist_track (playlist_id, position, track_id)
               SELECT p.id, s.position, t.id FROM s_entry s
               JOIN playlist p ON p.namespace = :ns AND p.source_key = s.playlist_key
               JOIN track t ON t.source_key = s.track_key WHERE true""",
            ns=namespace,
        )
    counts["rejects"] = insert_rejects(conn, chunk.rejects)
    return counts


def insert_rejects(conn: Connection, rejects: pl.DataFrame) -> int:
    """Store reject rows (idempotent by ``reject_key``); returns how many were new."""
    if not stage(conn, "s_reject", conform(rejects, REJECTS)):
        return 0
    result = conn.execute(
        text(
            """INSERT INTO ingest_reject (reject_key, batch_id, source, location, reason, raw)
               SELECT reject_key, batch_id, source, location, reason, raw FROM s_reject WHERE true
               ON CONFLICT (reject_key) DO NOTHING"""
        )
    )
    return result.rowcount or 0
