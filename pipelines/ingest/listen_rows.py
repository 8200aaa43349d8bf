"""Listen rows → ``listen`` rows: the load every listens parser ends in, and the loader of a generic
listens table (``recsys ingest table --kind listens``, ``recsys ingest listens --format csv``).

A parser's valid rows name a user, an item (a track, created when the rows describe
it, or an artist) and a time; :func:`load_listens` keys them (``listen.listen_key`` =
sha256(source, user, item, time)), rejects a repeated row, merges the tracks and
artists they name, then inserts the listens, an unknown item becoming a reject.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection

from pipelines.ingest import columns as c
from pipelines.ingest import table_rows
from pipelines.ingest.guards import MAX_NAME_CHARS
from pipelines.ingest.normalize import RAW_TRACK, build_chunk, capped_names, cut_names, log_cut_names
from pipelines.ingest.streaming import LoadChunk
from pipelines.ingest.table_batch import ROW
from recsys.catalog import batches
from recsys.catalog.bulk_listens import listen_keys, merge_listens
from recsys.catalog.frames import ARTISTS, conform
from recsys.catalog.merges import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE


def load_listens(
    conn: Connection,
    good: pl.DataFrame,
    *,
    listen_source: str,
    location: str,
    log: batches.RejectLog,
    max_name_chars: int = MAX_NAME_CHARS,
) -> dict[str, int]:
    """Create the tracks and artists the rows name, then insert the listens; unknown items become rejects.

    ``good`` holds a parser's valid rows: ``_row``, ``_user_key``, ``_item`` (the listened item's
    source key, for the listen key), ``_track_key`` or ``_artist_key`` (+ ``_artist_name``),
    ``_create_track`` with the ``raw_*`` columns of ``normalize.RAW_TRACK``, ``_listened_at``, ``_weight``.
    """
    keys = listen_keys(
        listen_source,
        good["_user_key"],
        good["_item"],
        good["_listened_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )
    good = good.with_columns(keys)
    repeated = good.filter(~pl.col("listen_key").is_first_distinct())
    for row in repeated.select(ROW, "_user_key", "_item").iter_rows(named=True):
        log.add(
            f"{location}: row {row[ROW]}",
            "duplicate listen: same user, item and time as an earlier row",
            {"user": row["_user_key"], "item": row["_item"]},
        )
    good = good.filter(pl.col("listen_key").is_first_distinct())

    creating = good.filter(pl.col("_create_track"))
    raw = creating.select([pl.col(f"raw_{n}").alias(n) for n in RAW_TRACK]).cast(RAW_TRACK)  # type: ignore[arg-type]
    chunk = build_chunk(raw, log=log, max_name_chars=max_name_chars)
    artist_rows = (
        good.filter(pl.col("_artist_key").is_not_null())
        .select(
            pl.col("_artist_key").alias("source_key"),
            pl.col("_artist_name").alias("name"),
            pl.col("_artist_key").str.slice(5).alias("name_key"),
        )
        .unique(subset="source_key", keep="first", maintain_order=True)
    )
    capped = capped_names(artist_rows, ("name",), max_name_chars)
    if capped.height:
        artist_rows = cut_names(artist_rows, ("name",), max_name_chars)
        log_cut_names(log, capped, "artist", max_name_chars)
    chunk.artists = pl.concat([chunk.artists, conform(artist_rows, ARTISTS)]).unique(
        subset="source_key", keep="first", maintain_order=True
    )
    merge_chunk(conn, chunk, namespace=DEFAULT_NAMESPACE)
    inserted, missing = merge_listens(
        conn,
        good.select(
            "listen_key",
            pl.lit(listen_source).alias("source"),
            pl.col("_user_key").alias("user_key"),
            pl.col("_track_key").alias("track_key"),
            pl.col("_artist_key").alias("artist_key"),
            pl.col("_weight").alias("weight"),
            pl.col("_listened_at").alias("listened_at"),
            (pl.lit(f"{location}: row ") + pl.col(ROW).cast(pl.String)).alias("location"),
        ),
    )
    for row in missing.iter_rows(named=True):
        item = row["track_key"] or row["artist_key"]
        log.add(row["location"], f"unknown track ({item} is not in the catalog)", row)
    return {"listens": inserted}


def table_listens_loader(
    location: str, prefix: str, listen_source: str, *, has_title: bool, max_name_chars: int = MAX_NAME_CHARS
) -> LoadChunk:
    """The chunk loader of a generic listens table (see the README for its columns)."""

    def load(conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog) -> dict[str, int]:
        rows = table_rows.with_track_fields(chunk, prefix).with_columns(
            c.blank(pl.col("user")).alias("_user"),
            c.blank(pl.col("weight")).alias("_weight_raw"),
            c.blank(pl.col("timestamp")).alias("_time_raw"),
            c.timestamp(pl.col("timestamp")).alias("_listened_at"),
        )
        has_id = pl.col("_id").is_not_null()
        named = pl.col("_title").is_not_null() & pl.col("_artist").is_not_null()
        artist_level = pl.lit(not has_title) & ~has_id
        rows = rows.with_columns(
            (pl.lit(f"{prefix}:") + pl.col("_user")).alias("_user_key"),
            pl.col("_weight_raw").cast(pl.Float64, strict=False).fill_null(1.0).alias("_weight"),
            pl.when(artist_level).then(None).otherwise(pl.col("_track_key")).alias("_track_key"),
            pl.when(artist_level).then(c.artist_source_key(pl.col("_artist"))).alias("_artist_key"),
            pl.col("_artist").alias("_artist_name"),
            (pl.lit(has_title) & named).alias("_create_track"),
        ).with_columns(pl.coalesce("_track_key", "_artist_key").alias("_item"))
        weight = pl.col("_weight_raw").cast(pl.Float64, strict=False)
        checks: list[tuple[pl.Expr, pl.Expr | str]] = [
            table_rows.encoding_check("listens"),
            (pl.col("_user").is_null(), "missing field: user"),
            *c.id_checks({"user": pl.col("_user")}),
            (
                pl.col("_weight_raw").is_not_null() & bad_weight(weight),
                pl.lit("invalid weight: ") + c.quoted(pl.col("_weight_raw")),
            ),
            (
                pl.col("_time_raw").is_not_null() & pl.col("_listened_at").is_null(),
                pl.lit("invalid timestamp: ") + c.quoted(pl.col("_time_raw")),
            ),
        ]
        if has_title:
            checks += [
                (~has_id & pl.col("_title").is_null(), "missing field: title"),
                (~has_id & pl.col("_artist").is_null(), "missing field: artist"),
            ]
        else:
            checks.append((~has_id & pl.col("_artist").is_null(), "missing field: track_id or artist"))
        checks += table_rows.track_checks(rows, require_names=False)
        rows = rows.with_columns(table_rows.first_reason(checks))
        good, bad = (
            rows.filter(pl.col(table_rows.REASON).is_null()),
            rows.filter(pl.col(table_rows.REASON).is_not_null()),
        )
        table_rows.log_rejects(log, bad, location, c.KIND_FIELDS["listens"])
        good = good.with_columns(table_rows.raw_track_columns())
        return load_listens(
            conn, good, listen_source=listen_source, location=location, log=log, max_name_chars=max_name_chars
        )

    return load


def bad_weight(weight: pl.Expr) -> pl.Expr:
    """A weight that is not a positive, finite number (text, 0, NaN, infinity)."""
    return weight.is_null() | ~weight.is_finite() | (weight <= 0)
