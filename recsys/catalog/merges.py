"""Bulk, idempotent merges of normalised frames into the catalog.

Every load goes through the same two steps on both databases:

1. **stage**: the frame is written to a temporary table (:mod:`recsys.catalog.staging`);
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
already in the catalog (:func:`~recsys.catalog.staging.probe_tracks`) and the load's
memory of tracks, artists and albums (:class:`~recsys.catalog.load_memory.KnownTracks`).
Then only rows the load has not met are written (new albums and tracks on PostgreSQL
copied straight in with a block of ids drawn from their sequence,
:func:`~recsys.catalog.staging.copy_new_rows`; other new rows return their ids), and
tracks, credits and entries are written with their ids in place instead of joining
the catalog's tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, bindparam, text

from recsys.catalog import frames
from recsys.catalog.load_memory import KnownTracks
from recsys.catalog.staging import (
    affected_rows,
    copy_new_rows,
    fence,
    inserted_rows,
    probe_tracks,
    query_frame,
    stage,
    write_rows,
    written_ids,
)
from recsys.errors import CatalogError


def _distinct(conn: Connection) -> str:
    return "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"


def merge_chunk(
    conn: Connection,
    chunk: frames.CatalogChunk,
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
    chunk: frames.CatalogChunk,
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
        if stage(conn, "s_artist", frames.conform(chunk.artists, frames.ARTISTS)):
            counts["artists"] = affected_rows(
                conn,
                """INSERT INTO artist (source_key, name, name_key, spotify_uri)
                   SELECT source_key, name, name_key, spotify_uri FROM s_artist WHERE true
                   ON CONFLICT (source_key) DO UPDATE SET spotify_uri = excluded.spotify_uri
                   WHERE artist.spotify_uri IS NULL AND excluded.spotify_uri IS NOT NULL""",
            )
        if stage(conn, "s_album", frames.conform(chunk.albums, frames.ALBUMS)):
            counts["albums"] = affected_rows(
                conn,
                """INSERT INTO album (source_key, title, artist_id, spotify_uri, release_year, album_type)
                   SELECT s.source_key, s.title, a.id, s.spotify_uri, s.release_year, s.album_type
                   FROM s_album s LEFT JOIN artist a ON a.source_key = s.artist_key WHERE true
                   ON CONFLICT (source_key) DO NOTHING""",
            )
        counts.update(_merge_tracks(conn, chunk))
    return counts, track_ids


def merge_facts(
    conn: Connection, chunk: frames.CatalogChunk, *, namespace: str, track_ids: pl.DataFrame | None = None
) -> dict[str, int]:
    """The second half of :func:`merge_chunk`: playlists, their entries and the rejects.

    Every track the entries name must be in the catalog: merged by
    :func:`merge_dimensions` in this transaction or in one committed before it.
    ``track_ids``, when given, are the ids that returned.
    """
    counts: dict[str, int] = {}
    playlist_ids: pl.DataFrame | None = None
    playlists = frames.conform(chunk.playlists, frames.PLAYLISTS)
    if playlists.height:
        # Entries of the playlists in this chunk are replaced as a whole: the chunk is their truth.
        # Only playlists already in the catalog can have entries to replace: each key is looked up
        # in the unique index (see fence), never by hashing every playlist of the namespace, which
        # a large load would do again for every chunk.
        replaced = _playlist_ids(conn, playlists["source_key"], "s_playlist_key", namespace)
        if not replaced.height:
            # None of them is there: copied straight in with a block of ids (PostgreSQL), ids
            # that the entries then take without reading them back.
            new = copy_new_rows(
                conn, "playlist", playlists.select(pl.lit(namespace, pl.String).alias("namespace"), pl.all())
            )
            if new is not None:
                counts["playlists"] = new.height
                playlist_ids = new.select(pl.col("source_key").alias("key"), "id")
        if playlist_ids is None:
            stage(conn, "s_playlist", playlists)
            counts["playlists"] = _upsert_playlists(conn, namespace)
            delete = text("DELETE FROM playlist_track WHERE playlist_id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            )
            ids = replaced["id"].to_list()
            for start in range(0, len(ids), 1_000):
                conn.execute(delete, {"ids": ids[start : start + 1_000]})
    if chunk.entries.height:
        counts["playlist_tracks"] = _insert_entries(
            conn, frames.conform(chunk.entries, frames.ENTRIES), namespace, track_ids, playlist_ids
        )
    counts["rejects"] = insert_rejects(conn, chunk.rejects)
    return counts


_PLAYLIST_COLUMNS = (
    "name",
    "name_key",
    "description",
    "owner",
    "num_followers",
    "collaborative",
    "modified_at",
    "num_tracks",
)


def _upsert_playlists(conn: Connection, namespace: str) -> int:
    """The staged playlists inserted, or updated where a value changed; the rows affected."""
    cols = _PLAYLIST_COLUMNS
    nd = _distinct(conn)
    return affected_rows(
        conn,
        f"""INSERT INTO playlist (namespace, source_key, {", ".join(cols)}, batch_id)
           SELECT :ns, source_key, {", ".join(cols)}, batch_id FROM s_playlist WHERE true
           ON CONFLICT (namespace, source_key) DO UPDATE SET
               {", ".join(f"{c} = excluded.{c}" for c in cols)}, batch_id = excluded.batch_id
           WHERE {" OR ".join(f"playlist.{c} {nd} excluded.{c}" for c in cols)}""",
        ns=namespace,
    )


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


def _merge_tracks(conn: Connection, chunk: frames.CatalogChunk) -> dict[str, int]:
    """Tracks and their credits by source key alone: new ones inserted, known ones filled in."""
    counts: dict[str, int] = {}
    if stage(conn, "s_track", frames.conform(chunk.tracks, frames.TRACKS)):
        counts["tracks"] = affected_rows(conn, _INSERT_TRACKS.format(staged="s_track"))
        counts["tracks_updated"] = affected_rows(conn, _FILL_TRACKS.format(staged="s_track"))
    if stage(conn, "s_track_artist", frames.conform(chunk.track_artists, frames.TRACK_ARTISTS)):
        counts["track_artists"] = affected_rows(conn, _INSERT_CREDITS.format(staged="s_track_artist"))
    return counts


def _fill_known(conn: Connection, old: pl.DataFrame, credits: pl.DataFrame, counts: dict[str, int]) -> None:
    """Known tracks of a chunk gain the values they lacked, and credits if they have none."""
    if stage(conn, "s_track_fill", old):
        counts["tracks_updated"] = affected_rows(conn, _FILL_TRACKS.format(staged="s_track_fill"))
        old_credits = credits.join(
            old.select(pl.col("source_key").alias("track_key")), on="track_key", how="semi"
        )
        if stage(conn, "s_track_artist", old_credits):
            counts["track_artists"] = counts.get("track_artists", 0) + affected_rows(
                conn, _INSERT_CREDITS.format(staged="s_track_artist")
            )


def _ids(frame: pl.DataFrame, key: str, name: str, *extra: str) -> pl.DataFrame:
    """``frame``'s ``source_key, id`` renamed for joining on ``key`` with the id as ``name``."""
    return frame.select(pl.col("source_key").alias(key), pl.col("id").alias(name), *extra)


def _merge_resolved(
    conn: Connection, chunk: frames.CatalogChunk, known: pl.DataFrame, memory: KnownTracks
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Artists, albums, tracks and credits with their ids resolved from the load's memory.

    Only artists and albums the load has not met (or an artist that now gains its URI)
    are written, with ``ON CONFLICT`` as everywhere; their ids come back from the
    writes or, for rows another load wrote, from one index lookup each. New tracks and
    their credits are then inserted with those ids in place: no join with the artist or
    album table. Returns (key, id) of all the chunk's tracks.
    """
    counts: dict[str, int] = {}
    artists = frames.conform(chunk.artists, frames.ARTISTS)
    cached = memory.artists.find(artists["source_key"])
    todo = (
        artists.join(cached, on="source_key", how="left")
        .filter(pl.col("id").is_null() | (~pl.col("has_uri") & pl.col("spotify_uri").is_not_null()))
        .select(list(frames.ARTISTS))
    )
    artist_ids = cached
    if stage(conn, "s_artist", todo.sort("source_key")):
        written = written_ids(
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
        artist_ids = pl.concat([cached, written.select(list(frames.KNOWN_ARTISTS))]).unique(
            "source_key", keep="last"
        )

    # New rows the load takes for new are copied straight in on PostgreSQL (copy_new_rows); elsewhere, or
    # when the copy met a row after all, they are inserted (plainly only where no copy was tried).
    plain_insert = memory.complete and conn.dialect.name != "postgresql"
    albums = frames.conform(chunk.albums, frames.ALBUMS)
    album_ids = memory.albums.find(albums["source_key"])
    todo = albums.join(album_ids, on="source_key", how="anti").join(
        _ids(artist_ids, "artist_key", "artist_id"), on="artist_key", how="left", maintain_order="left"
    )
    rows = todo.select("source_key", "title", "artist_id", "spotify_uri", "release_year", "album_type").sort(
        "source_key"
    )
    new_albums = copy_new_rows(conn, "album", rows) if memory.complete else None
    if new_albums is None and stage(conn, "s_album", rows):
        new_albums = written_ids(
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
        album_ids = pl.concat([album_ids, new_albums.select(list(frames.KNOWN_ALBUMS))])

    tracks = frames.conform(chunk.tracks, frames.TRACKS)
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
    credits = frames.conform(chunk.track_artists, frames.TRACK_ARTISTS)
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
    copied = copy_new_rows(conn, "track", rows) if memory.complete else None
    if copied is not None or stage(conn, "s_track", rows):
        names = ", ".join(columns)
        ids = (
            copied.select("source_key", "id")
            if copied is not None
            else inserted_rows(
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
        ).select(list(frames.KNOWN_TRACKS))
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


def insert_rejects(conn: Connection, rejects: pl.DataFrame) -> int:
    """Store reject rows (idempotent by ``reject_key``); returns how many were new."""
    if not stage(conn, "s_reject", frames.conform(rejects, frames.REJECTS)):
        return 0
    return affected_rows(
        conn,
        """INSERT INTO ingest_reject (reject_key, batch_id, source, location, reason, raw)
           SELECT reject_key, batch_id, source, location, reason, raw FROM s_reject WHERE true
           ON CONFLICT (reject_key) DO NOTHING""",
    )


def _key_ids(conn: Connection, keys: pl.Series | None, name: str, query: str, **params: Any) -> pl.DataFrame:
    """(key, id) of the distinct ``keys`` found by ``query`` (which joins the staged table ``name``;
    None: it is staged already)."""
    if keys is not None:
        stage(conn, name, pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String}))
    return query_frame(conn, query, **params)


def _playlist_ids(conn: Connection, keys: pl.Series, name: str, namespace: str) -> pl.DataFrame:
    """(key, id) of the playlists of ``namespace`` among ``keys`` (staged as ``name``): one
    descent of the unique index per key, never a hash of every playlist of the namespace."""
    return _key_ids(
        conn,
        keys,
        name,
        f"""SELECT source_key, id FROM (
               SELECT s.source_key,
                      (SELECT p.id FROM playlist p WHERE p.namespace = :ns AND p.source_key = s.source_key) AS id
               FROM {name} s {fence(conn)}) q
           WHERE id IS NOT NULL""",
        ns=namespace,
    )


def _insert_entries(
    conn: Connection,
    entries: pl.DataFrame,
    namespace: str,
    track_ids: pl.DataFrame | None = None,
    playlist_ids: pl.DataFrame | None = None,
) -> int:
    """Resolve the entries' playlist and track keys to ids and write them to ``playlist_track``.

    ``track_ids`` (key, id), when given, are the ids merged in this transaction: only
    keys it lacks are read back. ``playlist_ids`` (key, id), when given, are the ids of
    the playlists this transaction wrote: none is read back.
    """
    # A playlist's entries are consecutive: its key is resolved once per run, not once per entry.
    runs = entries.select(pl.col("playlist_key").rle()).unnest("playlist_key")
    playlists = (
        playlist_ids
        if playlist_ids is not None
        else _playlist_ids(conn, runs["value"], "s_entry_playlist", namespace)
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
