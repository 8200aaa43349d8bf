"""What a table reader yields: batches of text columns with each row's number and the parser's complaint.

Every reader (:mod:`pipelines.ingest.csv_reader`, :mod:`pipelines.ingest.parquet_reader`)
yields Polars frames of the file's columns as text, after ``_row`` (the 1-based data row
number) and ``_invalid`` (why the parser could not split the row, its fields then null;
null if it could). :func:`pipelines.ingest.streaming.open_table` hands them out as a
:class:`Table`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from recsys.errors import InputError

ROW = "_row"  # 1-based data row number (the header and blank lines are not counted)
INVALID = "_invalid"  # why the parser could not split the row (its fields are then null); null if it could


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@dataclass
class Table:
    """A table file opened for reading in batches: its column names and a way to read its rows."""

    path: Path
    columns: list[str]
    _batches: Callable[[int], Iterator[pl.DataFrame]]

    def batches(self, batch_rows: int) -> Iterator[pl.DataFrame]:
        """``_row`` (1-based), ``_invalid`` and the rows as text columns, ``batch_rows`` at a time.

        A row the parser could not split (more or fewer fields than the header) comes in its
        place with its fields null and the reason in ``_invalid``. InputError when the rest of
        the file cannot be read (a row longer than the block, or bytes that are not UTF-8
        where they are not accepted).
        """
        return self._batches(batch_rows)

    def read_all(self) -> pl.DataFrame:
        """Every row at once: only for small lookup tables (such as Last.fm's artists.dat).

        InputError if a row is malformed: a lookup table is taken whole or not at all.
        """
        parts = list(self.batches(1_000_000))
        frame = pl.concat(parts) if parts else pl.DataFrame(schema={ROW: pl.Int64, INVALID: pl.String})
        bad = frame.filter(pl.col(INVALID).is_not_null())
        if bad.height:
            raise InputError(f"{self.path}: row {bad[ROW][0]}: {bad[INVALID][0]}")
        return frame


def lossy_text(values: pa.Array) -> pa.Array:
    """Bytes as text, where they are not UTF-8 with U+FFFD in their place (as Polars' ``utf8-lossy``)."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8 somewhere in this block: decode it value by value
        decoded = [None if v is None else v.decode("utf-8", "replace") for v in values.to_pylist()]
        return pa.array(decoded, pa.string())
