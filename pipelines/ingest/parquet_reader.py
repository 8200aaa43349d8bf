"""Parquet files read a row group at a time, their text sized before it is expanded.

A value stored once in a dictionary may stand for every row: a row group's text values
are counted before they are expanded, and a row group that expands past
``max_input_bytes``, or columns nested deeper than ``max_json_depth``, stop the file
with one line saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.ingest.table_batch import INVALID, ROW, first_line, lossy_text
from recsys.errors import InputError


class ParquetReader:
    """A Parquet file read a row group at a time, its text sized before it is expanded."""

    def __init__(self, path: Path, *, max_input_bytes: int, max_json_depth: int, batch_bytes: int) -> None:
        self.path, self.limit, self.batch_bytes = path, max_input_bytes, batch_bytes
        footer = pq.ParquetFile(path)  # the footer only; Arrow refuses a schema nested past its own limit
        schema = footer.schema_arrow
        deepest = max((_nesting(f.type) for f in schema), default=0)
        if deepest > max_json_depth:
            raise InputError(
                f"{path}: columns nested more than {max_json_depth:,} levels deep (RECSYS_MAX_JSON_DEPTH)"
            )
        metadata = footer.metadata
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            # What the metadata says the group takes; the values are measured again when read.
            if max(group.total_byte_size, 8 * group.num_rows * max(group.num_columns, 1)) > self.limit:
                raise InputError(f"{path}: {_group_too_large(index, self.limit)}")
        for field in schema:
            if not _textual(_plain(field.type)):
                raise InputError(
                    f"{path}: cannot be read as a table (column {field.name!r} holds {field.type}: "
                    "neither a value nor a list of values)"
                )
        self.groups = metadata.num_row_groups
        self.names = list(schema.names)
        # Text stays in its dictionaries (one value for many rows) until a batch is expanded.
        self.text = [
            c.path for c in footer.schema if c.physical_type in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY")
        ]

    def batches(self, batch_rows: int) -> Iterator[pl.DataFrame]:
        source = pq.ParquetFile(self.path, read_dictionary=self.text)
        first = 1
        for index in range(self.groups):
            try:
                group = source.read_row_group(index, use_threads=False)
            except pa.ArrowException as exc:
                raise InputError(f"row group {index} cannot be read ({first_line(exc)})") from exc
            sizes = np.zeros(group.num_rows, np.int64)
            for column in group.columns:
                sizes += np.concatenate([_value_bytes(chunk) for chunk in column.chunks] or [sizes[:0]])
            if int(sizes.sum()) > self.limit:
                raise InputError(_group_too_large(index, self.limit))
            ends = np.cumsum(sizes)
            start = 0
            while start < group.num_rows:
                reach = int(
                    np.searchsorted(ends, (ends[start - 1] if start else 0) + self.batch_bytes, "right")
                )
                stop = min(group.num_rows, start + batch_rows, max(reach, start + 1))
                try:
                    frame = _text_frame(group.slice(start, stop - start), first + start)
                except pa.ArrowException as exc:
                    raise InputError(f"row group {index} cannot be read as text ({first_line(exc)})") from exc
                yield frame
                start = stop
            first += group.num_rows
            del group


def _group_too_large(index: int, limit: int) -> str:
    return f"row group {index} expands to more than {limit:,} bytes (RECSYS_MAX_INPUT_BYTES)"


def _nesting(kind: pa.DataType) -> int:
    """Levels of lists, structs and maps in ``kind`` (a plain value: 0)."""
    if isinstance(kind, pa.DictionaryType):
        return _nesting(kind.value_type)
    if kind.num_fields == 0:
        return 0
    return 1 + max(_nesting(kind.field(i).type) for i in range(kind.num_fields))


def _textual(kind: pa.DataType) -> bool:
    """Whether a column of ``kind`` reads as text: a value, or a list of values (joined with ``|``)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return kind.num_fields == 0


def _value_bytes(values: pa.Array) -> np.ndarray:
    """Per value, about the bytes it takes as text once expanded (a dictionary's values counted per row)."""
    kind = values.type
    if isinstance(kind, pa.DictionaryType):
        lengths = _value_bytes(values.dictionary)
        indices = values.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return (
            np.where(values.is_null().to_numpy(zero_copy_only=False), 0, lengths[indices])
            if len(lengths)
            else np.zeros(len(values), np.int64)
        )
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_binary_view(kind)
    ):
        return pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        items = _value_bytes(values.flatten()) + 1  # and a separator
        parents = pc.list_parent_indices(values).to_numpy(zero_copy_only=False)
        return np.bincount(parents, weights=items, minlength=len(values)).astype(np.int64)
    return np.full(len(values), 24, np.int64)  # a number, a time, a flag: a few dozen characters at most


def _plain(kind: pa.DataType) -> pa.DataType:
    """``kind`` with its dictionaries replaced by their values' type, and the values Polars does not
    take (decimals wider than it holds, half floats) as text or wider floats."""
    if isinstance(kind, pa.DictionaryType):
        return _plain(kind.value_type)
    if pa.types.is_decimal(kind):
        return pa.large_string()
    if pa.types.is_float16(kind):
        return pa.float32()
    if pa.types.is_large_list(kind):
        return pa.large_list(_plain(kind.value_type))
    if pa.types.is_list(kind):
        return pa.list_(_plain(kind.value_type))
    return kind


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return lossy_text(column.combine_chunks().cast(pa.large_binary()))
    return column


def _text_frame(rows: pa.Table, first: int) -> pl.DataFrame:
    """``_row``, ``_invalid`` and the rows' values as text (lists joined with ``|``), as a CSV batch reads;
    bytes that are not UTF-8 as U+FFFD, as a CSV is read (the caller rejects those rows)."""
    columns = [_as_text(column.cast(_plain(column.type))) for column in rows.columns]
    frame = pl.from_arrow(pa.Table.from_arrays(columns, names=rows.column_names), rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame.select(
        pl.int_range(first, first + frame.height, dtype=pl.Int64).alias(ROW),
        pl.lit(None, pl.String).alias(INVALID),
        *[
            pl.col(name).list.eval(pl.element().cast(pl.String)).list.join("|")
            if isinstance(dtype, pl.List)
            else pl.col(name).cast(pl.String)
            for name, dtype in frame.schema.items()
        ],
    )
