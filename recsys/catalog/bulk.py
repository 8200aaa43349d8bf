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

A large load of one source (the MPD loader) passes what it knows: the chunk's tracks
already in the catalog (:func:`probe_tracks`) and the load's memory of tracks,
artists and albums (:class:`KnownTracks`). Then only rows the load has not met are
written (new albums and tracks on PostgreSQL copied straight in with a block of ids
drawn from their sequence, :func:`_copied`; other new rows return their ids), and
tracks, credits and entries are written with their ids in place instead of joining
the catalog's tables.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

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

# Values a later occurrence of a track may add to its row, and how the row is checked for each.
HELD = ("has_album", "has_duration", "has_isrc", "has_year", "has_artist_uri")
_HELD = """track.album_id IS NOT NULL, track.duration_ms IS NOT NULL, track.isrc IS NOT NULL,
           track.year IS NOT NULL,
           COALESCE((SELECT a.spotify_uri IS NOT NULL FROM artist a WHERE a.id = track.artist_id), false)"""
# Every track as KNOWN_TRACKS, the same values read with the artist joined rather than looked up per row.
_ALL_TRACKS = """SELECT track.source_key, track.id, track.album_id IS NOT NULL, track.duration_ms IS NOT NULL,
                     track.isrc IS NOT NULL, track.year IS NOT NULL, COALESCE(artist.spotify_uri IS NOT NULL, false)
                 FROM track LEFT JOIN artist ON artist.id = track.artist_id"""
# A track known to be in the catalog: its id and which of those values its row holds.
KNOWN_TRACKS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64} | {name: pl.Boolean for name in HELD}
KNOWN_ARTISTS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64, "has_uri": pl.Boolean}
KNOWN_ALBUMS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64}

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
    # Filled by merge_dimensions when given the known tracks: the tracks it inserted (KNOWN_TRACKS).
    new_tracks: pl.DataFrame = field(default_factory=lambda: empty(KNOWN_TRACKS))


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
    _tune(conn)
    columns = ", ".join(f"{col} {_sql_type(dtype)}" for col, dtype in frame.schema.items())
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    on_commit = " ON COMMIT DROP" if conn.dialect.name == "postgresql" else ""
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns}){on_commit}")
    return write_rows(conn, name, frame)


def write_rows(conn: Connection, table: str, frame: pl.DataFrame) -> int:
    """Append ``frame``'s rows to ``table`` (its columns by name): ``COPY`` on PostgreSQL, ``executemany`` on SQLite."""
    if not frame.height:
        return 0
    listed = ", ".join(frame.columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        frame.write_csv(
            buffer, include_header=False, null_value="\\N", datetime_format="%Y-%m-%dT%H:%M:%S%.f%z"
        )
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({listed}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        placeholders = ", ".join("?" for _ in frame.columns)
        rows = frame.with_columns(
            [
                pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S%.f+00:00")
                for c, t in frame.schema.items()
                if isinstance(t, pl.Datetime)
            ]
        ).iter_rows()
        raw.executemany(f"INSERT INTO {table} ({listed}) VALUES ({placeholders})", rows)
    return frame.height


def _fence(conn: Connection) -> str:
    """A clause that keeps PostgreSQL from flattening a subquery of per-row index lookups.

    A chunk's keys are looked up one by one in a catalog table's unique index through
    a scalar subquery. Flattened into a join, the planner may instead hash the whole
    table for every chunk, which slows a large load down as the catalog grows.
    SQLite always looks up row by row.
    """
    return "OFFSET 0" if conn.dialect.name == "postgresql" else ""


def _run(conn: Connection, sql: str, **params: Any) -> int:
    """Execute ``sql``; the number of rows it affected."""
    return conn.execute(text(sql), params).rowcount or 0


def _distinct(conn: Connection) -> str:
    return "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"


def merge_chunk(
    conn: Connection,
    chunk: CatalogChunk,
    *,
    namespace: str,
    known: pl.DataFrame | None = None,
    memory: KnownTracks | None = None,
) -> dict[str, int]:
    """Merge one chunk into the catalog inside the caller's transaction; returns rows affected per table.

    ``known``, when given, holds the ``source_key, id`` of the chunk's tracks already in
    the catalog (from :func:`probe_tracks` in this transaction): every other track of the
    chunk is then inserted without looking for it first, and the entries take their
    track ids from ``known`` and from the insert itself instead of reading them back.
    """
    counts, track_ids = merge_dimensions(conn, chunk, known=known, memory=memory)
    counts.update(merge_facts(conn, chunk, namespace=namespace, track_ids=track_ids))
    return counts


def merge_dimensions(
    conn: Connection,
    chunk: CatalogChunk,
    *,
    known: pl.DataFrame | None = None,
    memory: KnownTracks | None = None,
) -> tuple[dict[str, int], pl.DataFrame | None]:
    """The first half of :func:`merge_chunk`: artists, albums, tracks and credits.

    Returns the rows affected per table and, given ``known``, the ``key, id`` of every
    track of the chunk, for :func:`merge_facts`.
    """
    counts: dict[str, int] = {}
    track_ids: pl.DataFrame | None = None
    if known is not None:
        track_ids, merged = _merge_resolved(conn, chunk, known, memory or KnownTracks())
        counts.update(merged)
    else:
        if stage(conn, "s_artist", conform(chunk.artists, ARTISTS)):
            counts["artists"] = _run(
                conn,
                """INSERT INTO artist (source_key, name, name_key, spotify_uri)
                   SELECT source_key, name, name_key, spotify_uri FROM s_artist WHERE true
                   ON CONFLICT (source_key) DO UPDATE SET spotify_uri = excluded.spotify_uri
                   WHERE artist.spotify_uri IS NULL AND excluded.spotify_uri IS NOT NULL""",
            )
        if stage(conn, "s_album", conform(chunk.albums, ALBUMS)):
            counts["albums"] = _run(
                conn,
                """INSERT INTO album (source_key, title, artist_id, spotify_uri, release_year, album_type)
                   SELECT s.source_key, s.title, a.id, s.spotify_uri, s.release_year, s.album_type
                   FROM s_album s LEFT JOIN artist a ON a.source_key = s.artist_key WHERE true
                   ON CONFLICT (source_key) DO NOTHING""",
            )
        counts.update(_merge_tracks(conn, chunk))
    return counts, track_ids


def merge_facts(
    conn: Connection, chunk: CatalogChunk, *, namespace: str, track_ids: pl.DataFrame | None = None
) -> dict[str, int]:
    """The second half of :func:`merge_chunk`: playlists, their entries and the rejects.

    Every track the entries name must be in the catalog: merged by
    :func:`merge_dimensions` in this transaction or in one committed before it.
    ``track_ids``, when given, are the ids that returned.
    """
    counts: dict[str, int] = {}
    nd = _distinct(conn)

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
        # Entries of the playlists in this chunk are replaced as a whole: the chunk is their truth.
        # Only playlists already in the catalog can have entries to replace.
        replaced = (
            conn.execute(
                text(
                    """SELECT p.id FROM s_playlist s
                   JOIN playlist p ON p.namespace = :ns AND p.source_key = s.source_key"""
                ),
                {"ns": namespace},
            )
            .scalars()
            .all()
        )
        counts["playlists"] = _run(
            conn,
            f"""INSERT INTO playlist (namespace, source_key, {", ".join(cols)}, batch_id)
               SELECT :ns, source_key, {", ".join(cols)}, batch_id FROM s_playlist WHERE true
               ON CONFLICT (namespace, source_key) DO UPDATE SET
                   {", ".join(f"{c} = excluded.{c}" for c in cols)}, batch_id = excluded.batch_id
               WHERE {" OR ".join(f"playlist.{c} {nd} excluded.{c}" for c in cols)}""",
            ns=namespace,
        )
        delete = text("DELETE FROM playlist_track WHERE playlist_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        for start in range(0, len(replaced), 1_000):
            conn.execute(delete, {"ids": list(replaced[start : start + 1_000])})
    if chunk.entries.height:
        counts["playlist_tracks"] = _insert_entries(
            conn, conform(chunk.entries, ENTRIES), namespace, track_ids
        )
    counts["rejects"] = insert_rejects(conn, chunk.rejects)
    return counts


_INSERT_TRACKS = """INSERT INTO track (source_key, spotify_uri, isrc, mbid, title, title_key, artist_id, artist_name,
                                   album_id, duration_ms, year, recording_key)
               SELECT s.source_key, s.spotify_uri, s.isrc, s.mbid, s.title, s.title_key, a.id, s.artist_name,
                      al.id, s.duration_ms, s.year, s.recording_key
               FROM {staged} s
               LEFT JOIN artist a ON a.source_key = s.artist_key
               LEFT JOIN album al ON al.source_key = s.album_key
               WHERE NOT EXISTS (SELECT 1 FROM track t WHERE t.source_key = s.source_key)
               ON CONFLICT (source_key) DO NOTHING"""
# Known tracks gain only the values they lacked (first occurrence wins otherwise).
_FILL_TRACKS = """UPDATE track SET
                   album_id = COALESCE(track.album_id, x.album_id),
                   duration_ms = COALESCE(track.duration_ms, x.duration_ms),
                   isrc = COALESCE(track.isrc, x.isrc),
                   year = COALESCE(track.year, x.year)
               FROM (SELECT s.source_key, al.id AS album_id, s.duration_ms, s.isrc, s.year
                     FROM {staged} s LEFT JOIN album al ON al.source_key = s.album_key) AS x
               WHERE track.source_key = x.source_key
                 AND ((track.album_id IS NULL AND x.album_id IS NOT NULL)
                   OR (track.duration_ms IS NULL AND x.duration_ms IS NOT NULL)
                   OR (track.isrc IS NULL AND x.isrc IS NOT NULL)
                   OR (track.year IS NULL AND x.year IS NOT NULL))"""
# Credits belong to a track's first occurrence: a track that has any keeps them.
_INSERT_CREDITS = """INSERT INTO track_artist (track_id, position, artist_id, role)
               SELECT t.id, s.position, a.id, s.role FROM {staged} s
               JOIN track t ON t.source_key = s.track_key
               JOIN artist a ON a.source_key = s.artist_key
               WHERE NOT EXISTS (SELECT 1 FROM track_artist x WHERE x.track_id = t.id)
               ON CONFLICT (track_id, position) DO NOTHING"""


def _merge_tracks(conn: Connection, chunk: CatalogChunk) -> dict[str, int]:
    """Tracks and their credits by source key alone: new ones inserted, known ones filled in."""
    counts: dict[str, int] = {}
    if stage(conn, "s_track", conform(chunk.tracks, TRACKS)):
        counts["tracks"] = _run(conn, _INSERT_TRACKS.format(staged="s_track"))
        counts["tracks_updated"] = _run(conn, _FILL_TRACKS.format(staged="s_track"))
    if stage(conn, "s_track_artist", conform(chunk.track_artists, TRACK_ARTISTS)):
        counts["track_artists"] = _run(conn, _INSERT_CREDITS.format(staged="s_track_artist"))
    return counts


def _fill_known(conn: Connection, old: pl.DataFrame, credits: pl.DataFrame, counts: dict[str, int]) -> None:
    """Known tracks of a chunk gain the values they lacked, and credits if they have none."""
    if stage(conn, "s_track_fill", old):
        counts["tracks_updated"] = _run(conn, _FILL_TRACKS.format(staged="s_track_fill"))
        old_credits = credits.join(
            old.select(pl.col("source_key").alias("track_key")), on="track_key", how="semi"
        )
        if stage(conn, "s_track_artist", old_credits):
            counts["track_artists"] = counts.get("track_artists", 0) + _run(
                conn, _INSERT_CREDITS.format(staged="s_track_artist")
            )


def _ids(frame: pl.DataFrame, key: str, name: str, *extra: str) -> pl.DataFrame:
    """``frame``'s ``source_key, id`` renamed for joining on ``key`` with the id as ``name``."""
    return frame.select(pl.col("source_key").alias(key), pl.col("id").alias(name), *extra)


def _merge_resolved(
    conn: Connection, chunk: CatalogChunk, known: pl.DataFrame, memory: KnownTracks
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Artists, albums, tracks and credits with their ids resolved from the load's memory.

    Only artists and albums the load has not met (or an artist that now gains its URI)
    are written, with ``ON CONFLICT`` as everywhere; their ids come back from the
    writes or, for rows another load wrote, from one index lookup each. New tracks and
    their credits are then inserted with those ids in place: no join with the artist or
    album table. Returns (key, id) of all the chunk's tracks.
    """
    counts: dict[str, int] = {}
    artists = conform(chunk.artists, ARTISTS)
    cached = memory.artists.find(artists["source_key"])
    todo = (
        artists.join(cached, on="source_key", how="left")
        .filter(pl.col("id").is_null() | (~pl.col("has_uri") & pl.col("spotify_uri").is_not_null()))
        .select(list(ARTISTS))
    )
    artist_ids = cached
    if stage(conn, "s_artist", todo.sort("source_key")):
        written = _written(
            conn,
            """INSERT INTO artist (source_key, name, name_key, spotify_uri)
               SELECT source_key, name, name_key, spotify_uri FROM s_artist WHERE true
               ON CONFLICT (source_key) DO UPDATE SET spotify_uri = excluded.spotify_uri
               WHERE artist.spotify_uri IS NULL AND excluded.spotify_uri IS NOT NULL""",
            "artist",
            todo["source_key"],
            "spotify_uri",
        )
        counts["artists"] = written.height
        written = written.with_columns(pl.col("spotify_uri").is_not_null().alias("has_uri"))
        memory.artists.add(written, among=cached["source_key"])  # only those may be known
        artist_ids = pl.concat([cached, written.select(list(KNOWN_ARTISTS))]).unique(
            "source_key", keep="last"
        )

    # New rows the load takes for new are copied straight in on PostgreSQL (_copied); elsewhere, or
    # when the copy met a row after all, they are inserted (plainly only where no copy was tried).
    plain_insert = memory.complete and conn.dialect.name != "postgresql"
    albums = conform(chunk.albums, ALBUMS)
    album_ids = memory.albums.find(albums["source_key"])
    todo = albums.join(album_ids, on="source_key", how="anti").join(
        _ids(artist_ids, "artist_key", "artist_id"), on="artist_key", how="left", maintain_order="left"
    )
    rows = todo.select("source_key", "title", "artist_id", "spotify_uri", "release_year", "album_type").sort(
        "source_key"
    )
    new_albums = _copied(conn, "album", rows) if memory.complete else None
    if new_albums is None and stage(conn, "s_album", rows):
        new_albums = _written(
            conn,
            """INSERT INTO album (source_key, title, artist_id, spotify_uri, release_year, album_type)
               SELECT source_key, title, artist_id, spotify_uri, release_year, album_type FROM s_album WHERE true
               ON CONFLICT (source_key) DO NOTHING""",
            "album",
            todo["source_key"],
            new=plain_insert,
        )
    if new_albums is not None:
        counts["albums"] = new_albums.height
        memory.albums.add(new_albums, among=pl.Series(dtype=pl.String))  # none of them was known
        album_ids = pl.concat([album_ids, new_albums.select(list(KNOWN_ALBUMS))])

    tracks = conform(chunk.tracks, TRACKS)
    keys = known.select(pl.col("source_key").cast(pl.String))
    new = (
        tracks.join(keys, on="source_key", how="anti", maintain_order="left")
        .join(
            _ids(artist_ids, "artist_key", "artist_id", "has_uri"),
            on="artist_key",
            how="left",
            maintain_order="left",
        )
        .join(_ids(album_ids, "album_key", "album_id"), on="album_key", how="left", maintain_order="left")
    )
    old = tracks.join(keys, on="source_key", how="semi", maintain_order="left")
    credits = conform(chunk.track_artists, TRACK_ARTISTS)
    ids = pl.DataFrame(schema={"source_key": pl.String, "id": pl.Int64})
    columns = (
        "source_key",
        "spotify_uri",
        "isrc",
        "mbid",
        "title",
        "title_key",
        "artist_id",
        "artist_name",
        "album_id",
        "duration_ms",
        "year",
        "recording_key",
    )
    rows = new.select(columns).sort("source_key")
    copied = _copied(conn, "track", rows) if memory.complete else None
    if copied is not None or stage(conn, "s_track", rows):
        names = ", ".join(columns)
        ids = (
            copied.select("source_key", "id")
            if copied is not None
            else _inserted(
                conn,
                f"""INSERT INTO track ({names}) SELECT {names} FROM s_track WHERE true
                    ON CONFLICT (source_key) DO NOTHING""",
                "source_key, id",
                ids.schema,
                new=plain_insert,
            )
        )
        counts["tracks"] = ids.height
        chunk.new_tracks = ids.join(
            new.select(
                "source_key",
                pl.col("album_id").is_not_null().alias("has_album"),
                pl.col("duration_ms").is_not_null().alias("has_duration"),
                pl.col("isrc").is_not_null().alias("has_isrc"),
                pl.col("year").is_not_null().alias("has_year"),
                pl.col("has_uri").fill_null(False).alias("has_artist_uri"),
            ),
            on="source_key",
            how="left",
        ).select(list(KNOWN_TRACKS))
        new_credits = credits.join(_ids(ids, "track_key", "track_id"), on="track_key", how="inner").join(
            _ids(artist_ids, "artist_key", "artist_id"), on="artist_key", how="inner"
        )
        # The tracks were created by this transaction: nothing can hold credits for them yet.
        counts["track_artists"] = write_rows(
            conn,
            "track_artist",
            new_credits.select("track_id", "position", "artist_id", "role").sort("track_id", "position"),
        )
        # Tracks taken for new that the insert found already there (another process wrote
        # them, or the load's memory was not complete) are merged as known tracks.
        lost = new.join(ids, on="source_key", how="anti")["source_key"]
        if lost.len():
            old = pl.concat([old, tracks.join(lost.to_frame(), on="source_key", how="semi")])
            known = pl.concat(
                [
                    f.select(pl.col("source_key").cast(pl.String), pl.col("id").cast(pl.Int64))
                    for f in (known, probe_tracks(conn, lost))
                ]
            )
    _fill_known(conn, old, credits, counts)
    written = pl.concat([ids, known.select("source_key", pl.col("id").cast(pl.Int64))])
    return written.rename({"source_key": "key"}), counts


def _copied(conn: Connection, table: str, rows: pl.DataFrame) -> pl.DataFrame | None:
    """Rows the load takes for new, copied straight into ``table`` with ids drawn from its sequence as one block.

    PostgreSQL only: ``rows`` with their ``id``; None on SQLite, and when one of them
    is in the table after all (another process wrote it), in which case nothing is
    written and the caller merges them with ``ON CONFLICT``. The copy skips what an
    ``INSERT … SELECT`` over a staged table costs: writing and reading the staged rows,
    inserting them one at a time, and sending every new id back.
    """
    if conn.dialect.name != "postgresql" or not rows.height:
        return None
    _tune(conn)
    # Until this transaction ends no other session inserts into the table (readers go on), so
    # nothing can draw from its sequence between the two calls below: the block is ours alone.
    conn.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    sequence = f"pg_get_serial_sequence('{table}', 'id')"
    last = conn.exec_driver_sql(
        f"SELECT setval({sequence}, nextval({sequence}) + {rows.height - 1})"
    ).scalar_one()
    with_ids = rows.select(
        pl.int_range(last - rows.height + 1, last + 1, dtype=pl.Int64).alias("id"), pl.all()
    )
    try:
        with conn.begin_nested():
            write_rows(conn, table, with_ids)
    except (IntegrityError, UniqueViolation):
        return None
    return with_ids


def _written(
    conn: Connection, insert: str, table: str, keys: pl.Series, *columns: str, new: bool = False
) -> pl.DataFrame:
    """Run an ``INSERT … ON CONFLICT`` over staged rows; ``source_key, id, *columns`` of every row of ``keys``.

    Rows the statement wrote come back from it; the others (already there, unchanged)
    are looked up one by one in the table's unique index. ``new``: see :func:`_inserted`.
    """
    listed = ", ".join(("source_key", "id", *columns))
    schema = {"source_key": pl.String, "id": pl.Int64} | {c: pl.String for c in columns}
    written = _inserted(conn, insert, listed, schema, new=new)
    rest = keys.filter(~keys.is_in(written["source_key"].implode()))
    return pl.concat([written, _probe(conn, table, rest, schema, ", ".join(f"{table}.{c}" for c in columns))])


def _inserted(
    conn: Connection, upsert: str, returning: str, schema: dict[str, Any], *, new: bool
) -> pl.DataFrame:
    """The ``returning`` values of the rows ``upsert`` (an ``INSERT … ON CONFLICT``) writes.

    With ``new`` (the load expects every row to be new), the insert first runs without
    its ``ON CONFLICT`` clause, in a savepoint: a plain insert skips the speculative
    insertion that conflict handling costs for every row. A row that is there after all
    (another process wrote it) fails it, and the statement runs again as written.
    """
    if new:
        plain = upsert[: upsert.rindex("ON CONFLICT")]
        try:
            with conn.begin_nested():
                return _query_frame(conn, f"{plain} RETURNING {returning}", schema=schema)
        except (IntegrityError, UniqueViolation):
            pass
    return _query_frame(conn, f"{upsert} RETURNING {returning}", schema=schema)


def _probe(
    conn: Connection, table: str, keys: pl.Series, schema: dict[str, Any], values: str = ""
) -> pl.DataFrame:
    """``source_key, id`` and ``values`` (SQL over ``table``'s row) of its rows whose source key is among ``keys``."""
    if not stage(
        conn, "s_probe", pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String})
    ):
        return pl.DataFrame(schema=schema)
    listed = f"s.source_key, {table}.id" + (f", {values}" if values else "")
    if conn.dialect.name == "postgresql":
        # One index lookup per staged key (see _fence), never a scan of the whole table.
        query = f"""SELECT {listed} FROM s_probe s CROSS JOIN LATERAL
                    (SELECT * FROM {table} WHERE {table}.source_key = s.source_key OFFSET 0) {table}"""
    else:
        query = f"SELECT {listed} FROM s_probe s JOIN {table} ON {table}.source_key = s.source_key"
    return _query_frame(conn, query, schema=schema)


def _query_frame(
    conn: Connection, query: str, schema: dict[str, Any] | None = None, **params: Any
) -> pl.DataFrame:
    """The rows of ``query`` (by default ``key, id``) as a frame of ``schema``.

    On PostgreSQL they are copied out and parsed by Polars: no Python object per row. The
    parameters are bound by psycopg (as in ``recsys.catalog.reads``): rendered into the SQL as
    literals, a ``%`` would reach the server doubled.
    """
    schema = schema or {"key": pl.String, "id": pl.Int64}
    if conn.dialect.name != "postgresql":
        rows = conn.execute(text(query), params).all()
        return pl.DataFrame(rows, schema=schema, orient="row")
    raw = conn.connection.driver_connection
    assert raw is not None
    compiled = text(query).bindparams(**params).compile(conn)
    buffer = io.BytesIO()
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)", compiled.params) as copy,
    ):
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    flags = [name for name, dtype in schema.items() if dtype == pl.Boolean]
    text_schema = {name: pl.String if name in flags else dtype for name, dtype in schema.items()}
    frame = pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=text_schema)
    return frame.with_columns(pl.col(name) == "t" for name in flags) if flags else frame


def insert_rejects(conn: Connection, rejects: pl.DataFrame) -> int:
    """Store reject rows (idempotent by ``reject_key``); returns how many were new."""
    if not stage(conn, "s_reject", conform(rejects, REJECTS)):
        return 0
    return _run(
        conn,
        """INSERT INTO ingest_reject (reject_key, batch_id, source, location, reason, raw)
           SELECT reject_key, batch_id, source, location, reason, raw FROM s_reject WHERE true
           ON CONFLICT (reject_key) DO NOTHING""",
    )


def _key_ids(conn: Connection, keys: pl.Series, name: str, query: str, **params: Any) -> pl.DataFrame:
    """(key, id) of the distinct ``keys`` found by ``query`` (which joins the staged table ``name``)."""
    stage(conn, name, pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String}))
    return _query_frame(conn, query, **params)


def _insert_entries(
    conn: Connection, entries: pl.DataFrame, namespace: str, track_ids: pl.DataFrame | None = None
) -> int:
    """Resolve the entries' playlist and track keys to ids and write them to ``playlist_track``.

    ``track_ids`` (key, id), when given, are the ids merged in this transaction: only
    keys it lacks are read back.
    """
    # A playlist's entries are consecutive: its key is resolved once per run, not once per entry.
    runs = entries.select(pl.col("playlist_key").rle()).unnest("playlist_key")
    playlists = _key_ids(
        conn,
        runs["value"],
        "s_entry_playlist",
        f"""SELECT source_key, id FROM (
               SELECT s.source_key,
                      (SELECT p.id FROM playlist p WHERE p.namespace = :ns AND p.source_key = s.source_key) AS id
               FROM s_entry_playlist s {_fence(conn)}) q
           WHERE id IS NOT NULL""",
        ns=namespace,
    )
    runs = runs.join(
        playlists.rename({"key": "value", "id": "playlist_id"}), on="value", how="left", maintain_order="left"
    )
    lookup = "SELECT t.source_key, t.id FROM s_entry_track s JOIN track t ON t.source_key = s.source_key"
    tracks = (
        track_ids if track_ids is not None else _key_ids(conn, entries["track_key"], "s_entry_track", lookup)
    )
    resolved = _resolved_tracks(entries, tracks)
    if track_ids is not None:  # keys written by another process since the probe are read back
        unresolved = resolved.filter(pl.col("track_id").is_null())["track_key"].unique()
        if unresolved.len():
            resolved = _resolved_tracks(
                entries, pl.concat([tracks, _key_ids(conn, unresolved, "s_entry_track", lookup)])
            )
    lost_playlists = runs.filter(pl.col("playlist_id").is_null())
    lost = resolved.filter(pl.col("track_id").is_null())
    if lost_playlists.height or lost.height:
        entry = (
            lost.row(0, named=True)
            if not lost_playlists.height
            else entries.filter(pl.col("playlist_key") == lost_playlists["value"][0]).row(0, named=True)
        )
        count = (
            int(lost_playlists["len"].sum())
            + lost.join(
                lost_playlists.select(pl.col("value").alias("playlist_key")), on="playlist_key", how="anti"
            ).height
        )
        raise CatalogError(
            f"{count:,} playlist entries name a playlist or track that is not in the catalog "
            f"(first: playlist {entry['playlist_key']!r}, track {entry['track_key']!r})"
        )
    rows = resolved.select(
        runs.select(pl.col("playlist_id").repeat_by("len").explode())["playlist_id"],
        "position",
        "track_id",
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY playlist_track (playlist_id, position, track_id) FROM STDIN (FORMAT binary)"
            ) as copy,
        ):
            copy.write(_binary_entries(rows))
    else:
        write_rows(conn, "playlist_track", rows)
    return rows.height


def _resolved_tracks(entries: pl.DataFrame, tracks: pl.DataFrame) -> pl.DataFrame:
    """``entries`` with the id of each one's track (null where ``tracks``, key and id, lacks it)."""
    ids = tracks.rename({"key": "track_key", "id": "track_id"})
    return entries.join(ids, on="track_key", how="left", maintain_order="left")


# A row of playlist_track in COPY's binary format: field count, then each field's length and
# big-endian value (bigint playlist_id, integer position, bigint track_id).
_ENTRY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("n1", ">i4"),
        ("playlist_id", ">i8"),
        ("n2", ">i4"),
        ("position", ">i4"),
        ("n3", ">i4"),
        ("track_id", ">i8"),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no header extension
_COPY_TRAILER = b"\xff\xff"


def _binary_entries(rows: pl.DataFrame) -> bytes:
    """``playlist_id, position, track_id`` rows (none null) as a binary ``COPY`` stream: no text to format or parse."""
    out = np.empty(rows.height, dtype=_ENTRY_ROW)
    out["fields"], out["n1"], out["n2"], out["n3"] = 3, 8, 4, 8
    for name in ("playlist_id", "position", "track_id"):
        out[name] = rows[name].to_numpy()
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


def probe_tracks(conn: Connection, keys: pl.Series) -> pl.DataFrame:
    """``KNOWN_TRACKS`` rows (id and the values held) of the tracks among ``keys`` already in the catalog."""
    return _probe(conn, "track", keys, KNOWN_TRACKS, _HELD)


def brought(raw: pl.DataFrame) -> pl.DataFrame:
    """Per raw track (``RAW_TRACK`` columns), which of the :data:`HELD` values this occurrence brings."""
    return raw.select(
        pl.col("source_key").cast(pl.String),
        (pl.col("album_uri").is_not_null() | pl.col("album_title").is_not_null()).alias("has_album"),
        pl.col("duration_ms").is_not_null().alias("has_duration"),
        pl.col("isrc").is_not_null().alias("has_isrc"),
        pl.col("release_year").is_not_null().alias("has_year"),
        pl.col("artist_uri").is_not_null().alias("has_artist_uri"),
    )


# Over ``wanted`` joined with what is held (suffix ``_held``): the row holds every value the occurrence brings.
_HOLDS_ALL = pl.all_horizontal(pl.col(f"{name}_held") | ~pl.col(name) for name in HELD)


def settled(wanted: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """``source_key, id`` of the tracks whose catalog row already holds every value this occurrence brings.

    ``wanted`` has the source key and, per value, whether this occurrence brings it
    (:data:`HELD` names); ``held`` has what the catalog holds (``KNOWN_TRACKS``).
    """
    return _holding_all(wanted.join(held, on="source_key", how="inner", suffix="_held"))


def _holding_all(joined: pl.DataFrame) -> pl.DataFrame:
    """``source_key, id`` of the rows of ``joined`` (see :func:`settled`) that hold all they are brought."""
    return joined.filter(_HOLDS_ALL).select("source_key", "id")


# Memory's hidden column: a 64-bit hash of each row's source key.
_KEY_HASH = "_key_hash"
# A probe's row number, while a lookup runs.
_ROW = "_row"


class KnownRows:
    """Rows one load has found in or written to the catalog, by source key, so it need not look them up again.

    At most ``limit`` rows are kept (the most recently seen), so memory stays bounded;
    ``evicted`` says that some were let go. Every chunk probes the whole memory, so rows
    are matched on a 64-bit hash of their key, kept beside it (integers join several
    times faster than strings), and each match is then confirmed on the key itself:
    two keys that share a hash are never taken for one another.

    Rows are only ever appended (a row met again is moved to the end), so a lookup can
    be confined to the rows appended after a count of them (``since``; a
    :class:`Survey` records it). Lookups may run in any thread; rows are added by one
    thread at a time.
    """

    def __init__(self, schema: dict[str, Any], limit: int) -> None:
        self.schema = schema
        self.limit = limit
        # The rows, and how many rows were ever appended: read and replaced together.
        self._state = (pl.DataFrame(schema=schema | {_KEY_HASH: pl.UInt64}), 0)
        self.evicted = False

    @staticmethod
    def key_hash(keys: pl.Expr) -> pl.Expr:
        return keys.hash(seed=0)

    @property
    def frame(self) -> pl.DataFrame:
        """The known rows, oldest first."""
        return self._state[0].drop(_KEY_HASH)

    def lookup(self, probe: pl.DataFrame, suffix: str = "_known", since: int | None = None) -> pl.DataFrame:
        """The rows of ``probe`` whose ``source_key`` is known, with the known row's columns
        (those whose names clash take ``suffix``); with ``since``, known from the rows appended
        after the first ``since`` ever appended."""
        rows, appended = self._state
        return self._lookup(rows if since is None else rows.tail(appended - since), probe, suffix)

    def _lookup(self, rows: pl.DataFrame, probe: pl.DataFrame, suffix: str) -> pl.DataFrame:
        hashed = probe.with_columns(self.key_hash(pl.col("source_key")).alias(_KEY_HASH))
        joined = hashed.join(rows, on=_KEY_HASH, how="inner", suffix=suffix)
        return joined.filter(pl.col("source_key") == pl.col(f"source_key{suffix}")).drop(
            _KEY_HASH, f"source_key{suffix}"
        )

    def find(self, keys: pl.Series) -> pl.DataFrame:
        """The known rows of ``keys``."""
        probe = pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String})
        return self.lookup(probe).select(list(self.schema))

    def add(self, *frames: pl.DataFrame, among: pl.Series | None = None) -> None:
        """Remember the rows of ``frames`` (the last of each key), replacing those known by the same keys.

        ``among``, when given, holds the only keys of ``frames`` the memory may know
        already (a lookup just made found them, and nothing was added since): the
        memory is searched for rows to replace only when one of those comes.
        """
        fresh = (
            pl.concat([f.select(list(self.schema)) for f in frames])
            .unique(subset="source_key", keep="last", maintain_order=True)
            .with_columns(self.key_hash(pl.col("source_key")).alias(_KEY_HASH))
        )
        rows, appended = self._state
        candidates = fresh if among is None else fresh.filter(pl.col("source_key").is_in(among.implode()))
        # Rows met again are replaced; usually there are none, and the known rows are not copied.
        hit = rows[_KEY_HASH].is_in(candidates[_KEY_HASH].implode()) if candidates.height else None
        if hit is not None and hit.any():
            # A known row that only shares its key's hash with a fresh one stays.
            kept = rows.filter(hit).join(fresh.select("source_key"), on="source_key", how="anti")
            rows = pl.concat([rows.filter(~hit), kept])
            appended += kept.height
        rows = pl.concat([rows, fresh], rechunk=False)
        appended += fresh.height
        if rows.height > self.limit:
            self.evicted = True
            rows = rows.tail(self.limit)
        self._state = (rows.rechunk() if rows.n_chunks() > 64 else rows, appended)


@dataclass(frozen=True)
class Survey:
    """What a :class:`KnownTracks` memory knew of a chunk's wanted tracks at one moment (:meth:`KnownTracks.survey`)."""

    settled: pl.DataFrame  # source_key, id: the tracks that held then, and so hold now, all they bring
    lacking: pl.DataFrame  # the known tracks lacking a value they bring: wanted's columns, id, held values
    rest: pl.DataFrame  # the wanted rows not settled then: the lacking and the unknown
    mark: int  # how many rows the memory had ever appended then


class KnownTracks(KnownRows):
    """Tracks one load has found in or written to the catalog, so it need not look them up again.

    Holds each track's id and which of the values a later occurrence could add its row
    already has. Values are only ever added to a track, never taken away, so a value
    recorded as held stays held: a track this cache calls settled is settled. A track
    it does not know, or records as lacking something, is looked up again. The artists
    and albums the load has met are kept too (id, and whether the artist has its URI),
    so new tracks arrive with their ids resolved and known ones are not written again.

    :meth:`prime` reads the whole catalog in when it fits: the memory is then
    *complete* (until it evicts a row), and a track it does not know is taken for a
    new one and inserted without being looked up first. One that another process
    wrote in the meantime is caught by the insert's ``ON CONFLICT`` and merged as a
    known track.
    """

    def __init__(self, limit: int = 4_000_000) -> None:
        super().__init__(KNOWN_TRACKS, limit)
        self.artists = KnownRows(KNOWN_ARTISTS, limit)
        self.albums = KnownRows(KNOWN_ALBUMS, limit)
        self.primed = False

    @property
    def complete(self) -> bool:
        """Whether every track, artist and album of the catalog is known (as of :meth:`prime`)."""
        return self.primed and not (self.evicted or self.artists.evicted or self.albums.evicted)

    def prime(self, conn: Connection) -> None:
        """Read every track, artist and album of the catalog, unless one table holds more than ``limit`` rows."""
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM track), (SELECT count(*) FROM artist), (SELECT count(*) FROM album)"
            )
        ).one()
        if max(counts) > self.limit:
            return
        if counts[0]:
            self.add(_query_frame(conn, _ALL_TRACKS, schema=KNOWN_TRACKS))
        if counts[1]:
            self.artists.add(
                _query_frame(
                    conn, "SELECT source_key, id, spotify_uri IS NOT NULL FROM artist", KNOWN_ARTISTS
                )
            )
        if counts[2]:
            self.albums.add(_query_frame(conn, "SELECT source_key, id FROM album", KNOWN_ALBUMS))
        self.primed = True

    def survey(self, wanted: pl.DataFrame) -> Survey:
        """What this memory knows now of ``wanted`` (as for :func:`settled`), for :meth:`classify` to finish later."""
        rows, mark = self._state
        held = self._lookup(rows, wanted.with_row_index(_ROW), "_held")
        holding = held.filter(_HOLDS_ALL)
        settled_rows = np.zeros(wanted.height, dtype=bool)
        settled_rows[holding[_ROW].to_numpy()] = True
        return Survey(
            settled=holding.select("source_key", "id"),
            lacking=held.filter(~_HOLDS_ALL).drop(_ROW),
            rest=wanted.filter(~pl.Series(settled_rows)),
            mark=mark,
        )

    def classify(self, survey: Survey) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
        """The tracks of a surveyed ``wanted`` this memory knows settled now (``source_key, id``),
        those it knows lacking a value their occurrence brings, and those it does not know (keys).

        Only the tracks not settled when surveyed are looked up again, among the rows
        added since: a settled track stays settled, and a row added later replaces the
        one surveyed.
        """
        since = self.lookup(survey.rest, suffix="_held", since=survey.mark)
        held = pl.concat(
            [survey.lacking.join(since.select("source_key"), on="source_key", how="anti"), since]
        )
        return (
            pl.concat([survey.settled, _holding_all(since)]),
            held.filter(~_HOLDS_ALL)["source_key"],
            survey.rest.join(held.select("source_key"), on="source_key", how="anti")["source_key"],
        )
