"""Bulk reads of query results into Polars frames, a batch at a time: no Python object per row kept.

``Result.all()`` holds one tuple per row (and a Python object per value) until the frame
is built: several times the frame's own size (for 3M playlist entries, about 0.7 GB for
a 60 MB frame). Here rows arrive in batches that become frames at once: PostgreSQL copies
the result out as CSV (``COPY (query) TO STDOUT``), parsed by Arrow in blocks of
``COPY_BLOCK_BYTES``; other databases (SQLite) are read ``batch_rows`` rows at a time
through the driver. The frames are joined without a copy (the result has one chunk per
batch), so the peak stays near the size of the result's columns.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, Select

BATCH_ROWS = 100_000
COPY_BLOCK_BYTES = 4 << 20

_ARROW_TYPES: dict[Any, pa.DataType] = {
    pl.Int16: pa.int16(),
    pl.Int32: pa.int32(),
    pl.Int64: pa.int64(),
    pl.Float32: pa.float32(),
    pl.Float64: pa.float64(),
    pl.Boolean: pa.bool_(),
    pl.String: pa.large_string(),
}


def read_frame(
    engine: Engine, stmt: Select[*tuple[Any, ...]], schema: dict[str, Any], *, batch_rows: int | None = None
) -> pl.DataFrame:
    """The rows of ``stmt`` as a frame of ``schema`` (its columns in the statement's order).

    Equal, row for row and type for type, to ``pl.DataFrame(conn.execute(stmt).all(),
    schema=schema, orient="row")``; NULLs stay null and an empty result is an empty frame.
    """
    for dtype in schema.values():
        if dtype not in _ARROW_TYPES:
            raise TypeError(f"read_frame: unsupported column type {dtype}")
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            parts = list(_copied(conn, stmt, schema))
        else:
            parts = list(_fetched(conn, stmt, schema, batch_rows or BATCH_ROWS))
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="vertical", rechunk=False)


def _fetched(
    conn: Connection, stmt: Select[*tuple[Any, ...]], schema: dict[str, Any], batch_rows: int
) -> Iterator[pl.DataFrame]:
    """Frames of ``batch_rows`` rows fetched from the driver's cursor (SQLite's steps lazily).

    The driver's plain tuples, not SQLAlchemy's rows (which take twice as long to build);
    SQLite's booleans come as 0 and 1.
    """
    raw_schema = {name: pl.Int64 if dtype == pl.Boolean else dtype for name, dtype in schema.items()}
    result = conn.execute(stmt)
    try:
        while rows := result.cursor.fetchmany(batch_rows):
            yield pl.DataFrame(rows, schema=raw_schema, orient="row").cast(schema)  # type: ignore[arg-type]
    finally:
        result.close()


def _copied(
    conn: Connection, stmt: Select[*tuple[Any, ...]], schema: dict[str, Any]
) -> Iterator[pl.DataFrame]:
    """Frames parsed from the CSV of ``COPY (stmt) TO STDOUT``, ``COPY_BLOCK_BYTES`` at a time.

    The server sends one message per row, so a block always ends at a row's end. The
    statement's parameters are bound by psycopg (COPY takes no server-side parameters).
    """
    compiled = stmt.compile(conn)
    raw = conn.connection.driver_connection
    assert raw is not None
    block = bytearray()
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)", compiled.params) as copy,
    ):
        for data in copy:
            block += data
            if len(block) >= COPY_BLOCK_BYTES:
                yield _parse(block, schema)
                block = bytearray()
    if block:
        yield _parse(block, schema)


def _parse(block: bytearray, schema: dict[str, Any]) -> pl.DataFrame:
    """PostgreSQL's CSV: NULL is an empty unquoted field, an empty string is ``""``; booleans ``t``/``f``."""
    table = pacsv.read_csv(
        io.BytesIO(block),
        read_options=pacsv.ReadOptions(
            column_names=list(schema), block_size=len(block) + 1, use_threads=False
        ),
        # An empty line is a row: the NULL of a one-column result.
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: _ARROW_TYPES[dtype] for name, dtype in schema.items()},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(schema)  # type: ignore[arg-type]
