"""Bulk, idempotent loading of listening history and of track genre/culture tags.

Same two steps as ``recsys.catalog.merges``: stage the frame in a temporary table,
then one ``INSERT … SELECT … ON CONFLICT`` resolves source keys to internal ids in
the database. A listen is identified by ``listen_key`` (a hash of source, user,
item and time), so loading the same rows twice changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

from recsys.catalog.frames import conform
from recsys.catalog.staging import stage

LISTENS: dict[str, Any] = {
    "listen_key": pl.String,
    "source": pl.String,
    "user_key": pl.String,
    "track_key": pl.String,  # track.source_key, or null for an artist-level listen
    "artist_key": pl.String,  # artist.source_key, or null (then the track's artist is used)
    "weight": pl.Float64,
    "listened_at": pl.Datetime("us", "UTC"),
    "location": pl.String,  # file and row, for the reject of a listen whose item is unknown
}
TRACK_TAGS = {"source_key": pl.String, "genres": pl.String, "cultures": pl.String}  # JSON arrays as text


def listen_keys(source: str, users: pl.Series, items: pl.Series, times: pl.Series) -> pl.Series:
    """sha256(source, user, item, time) per row; ``times`` are ISO strings or nulls (aggregate counts)."""
    out = [
        hashlib.sha256(f"{source}\x00{u}\x00{i}\x00{t or ''}".encode()).hexdigest()
        for u, i, t in zip(users.to_list(), items.to_list(), times.to_list(), strict=True)
    ]
    return pl.Series("listen_key", out, dtype=pl.String)


def merge_listens(conn: Connection, frame: pl.DataFrame) -> tuple[int, pl.DataFrame]:
    """Insert listens whose track or artist exists; returns (rows inserted, the staged rows that matched nothing).

    Runs inside the caller's transaction; tracks and artists of the chunk must be merged first.
    """
    if not stage(conn, "s_listen", conform(frame, LISTENS)):
        return 0, pl.DataFrame(schema=LISTENS)
    resolved = """FROM s_listen s
                  LEFT JOIN track t ON t.source_key = s.track_key
                  LEFT JOIN artist a ON a.source_key = s.artist_key"""
    found = "(s.track_key IS NULL OR t.id IS NOT NULL) AND (s.artist_key IS NULL OR a.id IS NOT NULL)"
    inserted = (
        conn.execute(
            text(
                f"""INSERT INTO listen (listen_key, source, user_key, track_id, artist_id, weight, listened_at)
                    SELECT s.listen_key, s.source, s.user_key, t.id, COALESCE(a.id, t.artist_id),
                           s.weight, s.listened_at
                    {resolved} WHERE {found}
                    ON CONFLICT (listen_key) DO NOTHING"""
            )
        ).rowcount
        or 0
    )
    rows = conn.execute(
        text(f"SELECT s.location, s.user_key, s.track_key, s.artist_key {resolved} WHERE NOT ({found})")
    ).all()
    missing = pl.DataFrame(
        [dict(r._mapping) for r in rows],
        schema={
            "location": pl.String,
            "user_key": pl.String,
            "track_key": pl.String,
            "artist_key": pl.String,
        },
    )
    return inserted, missing


def merge_track_tags(conn: Connection, frame: pl.DataFrame) -> int:
    """Set ``track.genres`` / ``track.cultures`` where still unset (the first source to tell wins)."""
    frame = conform(frame, TRACK_TAGS).unique(subset="source_key", keep="first", maintain_order=True)
    if not stage(conn, "s_track_tags", frame):
        return 0
    as_json = "CAST(s.{0} AS JSON)" if conn.dialect.name == "postgresql" else "s.{0}"
    total = 0
    for column in ("genres", "cultures"):
        # UPDATE … FROM joins on the unique source key (SQLite ≥ 3.33 and PostgreSQL).
        sql = f"""UPDATE track SET {column} = {as_json.format(column)} FROM s_track_tags s
                  WHERE s.source_key = track.source_key AND track.{column} IS NULL AND s.{column} IS NOT NULL"""
        total += conn.execute(text(sql)).rowcount or 0
    return total
