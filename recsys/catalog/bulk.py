"""Bulk, idempotent loading of normalised frames into the catalog.

Every load goes through the same two steps on both databases:

1. **stage**: the frame is written to a temporary table: ``COPY … FROM STDIN`` on
   PostgreSQL, batched ``executemany`` on SQLite;
2. **merge**: one ``INSERT … SELECT`` per dimension table (artist, album, track,
   playlist) resolves the source keys to internal ids inside the database; rows
   already there are not written again unless they gain a value they lacked.

Playlist entries, the bulk of every load, skip the staging join: the ids of the
chunk's playlists and tracks (only those, never the whole catalog) are read back,
joined to the entries in Polars and written straight into ``playlist_track`` with
``COPY`` (PostgreSQL) or ``executemany`` (SQLite). An entry naming a key the chunk
did not merge is refused, which is what keeps the fact tables' references whole
without foreign keys.

So memory does not grow with the catalog, a chunk is one transaction (a crash
loses only the uncommitted chunk), and loading the same chunk twice changes nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

from recsys.errors import CatalogError

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


def _tune(conn: Connection) -> None:
    """Settings for bulk loading, once per transaction (PostgreSQL) or connection (SQLite).

    PostgreSQL: hash joins of a chunk against a large catalog stay in memory, and no
    JIT compilation (it costs more than it saves on these statements). SQLite: a
    larger page cache (256 MiB at most) for the indexes being written.
    Durability is untouched: every committed chunk is on disk.
    """
    if conn.dialect.name == "postgresql":
        if conn.info.get("bulk_tuned") is not conn.get_transaction():
            conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.info["bulk_tuned"] = conn.get_transaction()
    elif not conn.connection.info.get("bulk_tuned"):
        conn.exec_driver_sql("PRAGMA cache_size = -262144")
        conn.connection.info["bulk_tuned"] = True


def stage(conn: Connection, name: str, frame: pl.DataFrame) -> int:
    """Write ``frame`` to a fresh temporary table ``name``; returns the row count."""
    dialect = conn.dialect.name
    _tune(conn)
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
        # New tracks first (a plain insert: no conflict handling for rows known to be absent)...
        counts["tracks"] = run(
            """INSERT INTO track (source_key, spotify_uri, isrc, mbid, title, title_key, artist_id, artist_name,
                                   album_id, duration_ms, year, recording_key)
               SELECT s.source_key, s.spotify_uri, s.isrc, s.mbid, s.title, s.title_key, a.id, s.artist_name,
                      al.id, s.duration_ms, s.year, s.recording_key
               FROM s_track s
               LEFT JOIN artist a ON a.source_key = s.artist_key
               LEFT JOIN album al ON al.source_key = s.album_key
               WHERE NOT EXISTS (SELECT 1 FROM track t WHERE t.source_key = s.source_key)
               ON CONFLICT (source_key) DO NOTHING"""
        )
        # ...then known tracks gain only the values they lacked (first occurrence wins otherwise).
        counts["tracks_updated"] = run(
            """UPDATE track SET
                   album_id = COALESCE(track.album_id, x.album_id),
                   duration_ms = COALESCE(track.duration_ms, x.duration_ms),
                   isrc = COALESCE(track.isrc, x.isrc),
                   year = COALESCE(track.year, x.year)
               FROM (SELECT s.source_key, al.id AS album_id, s.duration_ms, s.isrc, s.year
                     FROM s_track s LEFT JOIN album al ON al.source_key = s.album_key) AS x
               WHERE track.source_key = x.source_key
                 AND ((track.album_id IS NULL AND x.album_id IS NOT NULL)
                   OR (track.duration_ms IS NULL AND x.duration_ms IS NOT NULL)
                   OR (track.isrc IS NULL AND x.isrc IS NOT NULL)
                   OR (track.year IS NULL AND x.year IS NOT NULL))"""
        )
    if stage(conn, "s_track_artist", conform(chunk.track_artists, TRACK_ARTISTS)):
        # Credits belong to a track's first occurrence: a track that has any keeps them.
        counts["track_artists"] = run(
            """INSERT INTO track_artist (track_id, position, artist_id, role)
               SELECT t.id, s.position, a.id, s.role FROM s_track_artist s
               JOIN track t ON t.source_key = s.track_key
               JOIN artist a ON a.source_key = s.artist_key
               WHERE NOT EXISTS (SELECT 1 FROM track_artist x WHERE x.track_id = t.id)
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
    if chunk.entries.height:
        counts["playlist_tracks"] = _insert_entries(conn, conform(chunk.entries, ENTRIES), namespace)
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


def _key_ids(conn: Connection, keys: pl.Series, name: str, query: str, **params: Any) -> pl.DataFrame:
    """(key, id) of the distinct ``keys`` found by ``query`` (which joins the staged table ``name``)."""
    stage(conn, name, pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String}))
    schema = {"key": pl.String, "id": pl.Int64}
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        # COPY out and parse in Polars: no Python object per row.
        sql = str(text(query).bindparams(**params).compile(conn, compile_kwargs={"literal_binds": True}))
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
        if not buffer.tell():
            return pl.DataFrame(schema=schema)
        buffer.seek(0)
        return pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=schema)
    rows = conn.execute(text(query), params).all()
    return pl.DataFrame(rows, schema=schema, orient="row")


def _insert_entries(conn: Connection, entries: pl.DataFrame, namespace: str) -> int:
    """Resolve the entries' playlist and track keys to ids and write them to ``playlist_track``."""
    playlists = _key_ids(
        conn,
        entries["playlist_key"],
        "s_entry_playlist",
        """SELECT p.source_key, p.id FROM s_entry_playlist s
           JOIN playlist p ON p.namespace = :ns AND p.source_key = s.source_key""",
        ns=namespace,
    )
    tracks = _key_ids(
        conn,
        entries["track_key"],
        "s_entry_track",
        "SELECT t.source_key, t.id FROM s_entry_track s JOIN track t ON t.source_key = s.source_key",
    )
    resolved = (
        entries.lazy()
        .join(
            playlists.lazy().rename({"key": "playlist_key", "id": "playlist_id"}),
            on="playlist_key",
            how="left",
            maintain_order="left",
        )
        .join(
            tracks.lazy().rename({"key": "track_key", "id": "track_id"}),
            on="track_key",
            how="left",
            maintain_order="left",
        )
        .select("playlist_id", "position", "track_id", "playlist_key", "track_key")
        .collect()
    )
    missing = resolved.filter(pl.col("playlist_id").is_null() | pl.col("track_id").is_null())
    if missing.height:
        first = missing.row(0, named=True)
        raise CatalogError(
            f"{missing.height:,} playlist entries name a playlist or track that is not in the catalog "
            f"(first: playlist {first['playlist_key']!r}, track {first['track_key']!r})"
        )
    rows = resolved.select("playlist_id", "position", "track_id")
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        rows.write_csv(buffer, include_header=False)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY playlist_track (playlist_id, position, track_id) FROM STDIN (FORMAT csv)"
            ) as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        raw.executemany(
            "INSERT INTO playlist_track (playlist_id, position, track_id) VALUES (?, ?, ?)", rows.iter_rows()
        )
    return rows.height


def settled_tracks(conn: Connection, raw: pl.DataFrame) -> pl.Series:
    """Source keys of raw tracks already in the catalog that a merge would leave unchanged.

    ``raw`` has the raw-track columns ``source_key, artist_uri, album_title, album_uri,
    duration_ms, isrc, release_year``. A known track is settled unless this occurrence
    brings a value it lacks (album, duration, ISRC, year, its artist's URI); settled
    tracks need no normalisation and no merge, only their ids for the entries.
    """
    frame = raw.select(
        pl.col("source_key").cast(pl.String),
        (pl.col("album_uri").is_not_null() | pl.col("album_title").is_not_null()).alias("has_album"),
        pl.col("duration_ms").is_not_null().alias("has_duration"),
        pl.col("isrc").is_not_null().alias("has_isrc"),
        pl.col("release_year").is_not_null().alias("has_year"),
        pl.col("artist_uri").is_not_null().alias("has_artist_uri"),
    ).unique(subset="source_key", keep="first", maintain_order=True)
    if not stage(conn, "s_settle", frame):
        return pl.Series("source_key", [], dtype=pl.String)
    rows = conn.execute(
        text(
            """SELECT s.source_key FROM s_settle s
               JOIN track t ON t.source_key = s.source_key
               LEFT JOIN artist a ON a.id = t.artist_id
               WHERE (t.album_id IS NOT NULL OR NOT s.has_album)
                 AND (t.duration_ms IS NOT NULL OR NOT s.has_duration)
                 AND (t.isrc IS NOT NULL OR NOT s.has_isrc)
                 AND (t.year IS NOT NULL OR NOT s.has_year)
                 AND (a.spotify_uri IS NOT NULL OR NOT s.has_artist_uri)"""
        )
    ).all()
    return pl.Series("source_key", [r[0] for r in rows], dtype=pl.String)
