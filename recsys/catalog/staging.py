"""Staging and row writes: how a frame reaches the database, and how keys are looked up there.

Every load goes through a temporary table written in one go: ``COPY … FROM STDIN`` on
PostgreSQL, batched ``executemany`` on SQLite (:func:`stage`, :func:`write_rows`).
Rows a load takes for new are copied straight into their table with a block of ids
drawn from its sequence (:func:`copy_new_rows`) or inserted with their ids returned
(:func:`inserted_rows`, :func:`written_ids`); keys are looked up one index descent
each (:func:`probe_tracks`); and query results come back as Polars frames, copied
out on PostgreSQL (:func:`query_frame`).
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from recsys.catalog.frames import KNOWN_TRACKS

# Which of the values a later occurrence of a track may add (frames.HELD) its row holds, per row of track.
_HELD = """track.album_id IS NOT NULL, track.duration_ms IS NOT NULL, track.isrc IS NOT NULL,
           track.year IS NOT NULL,
           COALESCE((SELECT a.spotify_uri IS NOT NULL FROM artist a WHERE a.id = track.artist_id), false)"""

_SQL_TYPES = {
    pl.String: "TEXT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE PRECISION",
    pl.Boolean: "BOOLEAN",
}


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


def fence(conn: Connection) -> str:
    """A clause that keeps PostgreSQL from flattening a subquery of per-row index lookups.

    A chunk's keys are looked up one by one in a catalog table's unique index through
    a scalar subquery. Flattened into a join, the planner may instead hash the whole
    table for every chunk, which slows a large load down as the catalog grows.
    SQLite always looks up row by row.
    """
    return "OFFSET 0" if conn.dialect.name == "postgresql" else ""


def affected_rows(conn: Connection, sql: str, **params: Any) -> int:
    """Execute ``sql``; the number of rows it affected."""
    return conn.execute(text(sql), params).rowcount or 0


def copy_new_rows(conn: Connection, table: str, rows: pl.DataFrame) -> pl.DataFrame | None:
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


def written_ids(
    conn: Connection, insert: str, table: str, keys: pl.Series, *columns: str, new: bool = False
) -> pl.DataFrame:
    """Run an ``INSERT … ON CONFLICT`` over staged rows; ``source_key, id, *columns`` of every row of ``keys``.

    Rows the statement wrote come back from it; the others (already there, unchanged)
    are looked up one by one in the table's unique index. ``new``: see :func:`inserted_rows`.
    """
    listed = ", ".join(("source_key", "id", *columns))
    schema = {"source_key": pl.String, "id": pl.Int64} | {c: pl.String for c in columns}
    written = inserted_rows(conn, insert, listed, schema, new=new)
    rest = keys.filter(~keys.is_in(written["source_key"].implode()))
    return pl.concat([written, _probe(conn, table, rest, schema, ", ".join(f"{table}.{c}" for c in columns))])


def inserted_rows(
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
                return query_frame(conn, f"{plain} RETURNING {returning}", schema=schema)
        except (IntegrityError, UniqueViolation):
            pass
    return query_frame(conn, f"{upsert} RETURNING {returning}", schema=schema)


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
        # One index lookup per staged key (see fence), never a scan of the whole table.
        query = f"""SELECT {listed} FROM s_probe s CROSS JOIN LATERAL
                    (SELECT * FROM {table} WHERE {table}.source_key = s.source_key OFFSET 0) {table}"""
    else:
        query = f"SELECT {listed} FROM s_probe s JOIN {table} ON {table}.source_key = s.source_key"
    return query_frame(conn, query, schema=schema)


def query_frame(
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


def probe_tracks(conn: Connection, keys: pl.Series) -> pl.DataFrame:
    """``KNOWN_TRACKS`` rows (id and the values held) of the tracks among ``keys`` already in the catalog."""
    return _probe(conn, "track", keys, KNOWN_TRACKS, _HELD)
