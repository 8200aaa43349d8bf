"""Streaming a table file into the catalog in chunks, with its ingest batch and rejects.

A file is read in batches of at most ``batch_rows`` rows (and about ``BATCH_BYTES`` of
text) pulled one at a time (see ``open_table``), so a table larger than memory loads.
Each chunk is one transaction with its rejects; the file's ingest batch records the
totals, and a file already ingested with the same bytes is skipped.

A hostile file costs rejects, never the machine: a CSV line longer than the reader's
block is read on its own (up to ``MAX_ROW_BYTES``, beyond which it is one rejected row)
and the rows after it are read; a Parquet file is read a row
group at a time, its text values counted before they are expanded (a value stored once
in a dictionary may stand for every row), and a row group that expands past
``max_input_bytes`` or columns nested deeper than ``max_json_depth`` stop the file
with one line saying so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine

from pipelines.ingest.guards import MAX_INPUT_BYTES, MAX_JSON_DEPTH
from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.errors import InputError

# (connection, chunk rows, batch id, reject log) -> rows loaded per kind
LoadChunk = Callable[[Connection, pl.DataFrame, int, batches.RejectLog], dict[str, int]]

ROW = "_row"  # 1-based data row number (the header and blank lines are not counted)
INVALID = "_invalid"  # why the parser could not split the row (its fields are then null); null if it could
TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat")
PARQUET_SUFFIXES = (".parquet", ".pq")
# A CSV is parsed by Arrow a block of this many bytes at a time: a longer line is read on its own.
BLOCK_BYTES = 1 << 20
# A batch ends at ``batch_rows`` rows or at about this many bytes of values, whichever comes first.
BATCH_BYTES = 64 << 20
# A line longer than the block is read on its own, with a block that holds it, up to this many bytes;
# a longer one is rejected (the rows after it are read).
MAX_ROW_BYTES = 64 << 20
# Malformed rows wait in memory for the next good row (to take their place among the rows): at most this many.
MAX_MALFORMED = 100_000
# Bytes of a file scanned at a time when looking for lines longer than the block.
_SCAN_BYTES = 8 << 20


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def separator(path: Path) -> str:
    """The field separator: tab for .tsv/.tab, else the most frequent of , tab ; in the first line."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    with open(path, "rb") as handle:
        head = handle.readline(1 << 16)
    counts = {sep: head.count(sep.encode()) for sep in (",", "\t", ";")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


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


def open_table(
    path: Path,
    *,
    has_header: bool = True,
    columns: list[str] | None = None,
    quote: str | None = '"',
    lossy: bool = False,
    block_bytes: int | None = None,
    batch_bytes: int | None = None,
    max_input_bytes: int = MAX_INPUT_BYTES,
    max_json_depth: int = MAX_JSON_DEPTH,
) -> Table:
    """Open a CSV/TSV or Parquet file whose every column is read as text; InputError if it cannot be opened.

    Batches are pulled by the consumer. A CSV is parsed by Arrow's streaming reader
    (``pyarrow.csv.open_csv``) a block of ``block_bytes`` (default ``BLOCK_BYTES``) at a time,
    its bytes read at most a few dozen blocks ahead (about 32 MiB by default; ``LazyFrame.
    collect_batches`` would read ahead of a slow consumer by hundreds of MiB): quoted fields may hold separators, quotes (doubled) and line breaks, blank lines
    among them, kept byte for byte; a quote inside an unquoted field is an ordinary character;
    CRLF line ends and a UTF-8 byte-order mark are accepted. The blocks' rows are cut into
    batches of ``batch_rows`` rows or about ``batch_bytes`` (default ``BATCH_BYTES``) bytes,
    whichever is smaller. A line longer than the block (a row no block holds) is read on its
    own with a block that holds it, or, longer than ``MAX_ROW_BYTES``, comes as a malformed
    row in its place; the rows after it are read either way (a row longer than the block
    made of several shorter lines, inside quotes, still stops the file). With ``lossy``,
    bytes that are not UTF-8 become U+FFFD (the caller rejects those rows) instead of
    failing the file.

    A Parquet file is read a row group at a time, in batches bounded the same way by the
    size of its values as text: a row group whose values expand past ``max_input_bytes``,
    or columns nested deeper than ``max_json_depth``, make the file unreadable from there.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return _ParquetReader(
                path,
                max_input_bytes=max_input_bytes,
                max_json_depth=max_json_depth,
                batch_bytes=batch_bytes or BATCH_BYTES,
            ).table()
        if suffix in TEXT_SUFFIXES:
            if path.stat().st_size == 0:
                raise InputError(f"{path}: empty file")
            reader = _CsvReader(
                path,
                has_header=has_header,
                columns=columns,
                quote=quote,
                lossy=lossy,
                block_bytes=block_bytes or BLOCK_BYTES,
                batch_bytes=batch_bytes or BATCH_BYTES,
            )
            return Table(path, reader.names, reader.batches)
    except InputError:
        raise
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({first_line(exc)})") from exc
    raise InputError(f"{path}: not a CSV, TSV or Parquet file (extension {suffix or 'none'})")


class _ParquetReader:
    """A Parquet file read a row group at a time, its text sized before it is expanded."""

    def __init__(self, path: Path, *, max_input_bytes: int, max_json_depth: int, batch_bytes: int) -> None:
        import pyarrow.parquet as pq

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

    def table(self) -> Table:
        return Table(self.path, self.names, self.batches)

    def batches(self, batch_rows: int) -> Iterator[pl.DataFrame]:
        import pyarrow.parquet as pq

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
        return _lossy(column.combine_chunks().cast(pa.large_binary()))
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


class _CsvReader:
    """A CSV/TSV file read by Arrow in blocks; its rows numbered, malformed ones in their place."""

    def __init__(
        self,
        path: Path,
        *,
        has_header: bool,
        columns: list[str] | None,
        quote: str | None,
        lossy: bool,
        block_bytes: int,
        batch_bytes: int,
    ) -> None:
        self.path, self.has_header, self.lossy = path, has_header, lossy
        self.block_bytes, self.batch_bytes = block_bytes, batch_bytes
        # Arrow finds no row in a file of one line without a line end: such a (small) file is
        # read from memory, its line ended.
        self.data: pa.Buffer | None = None
        if path.stat().st_size <= block_bytes:
            data = path.read_bytes()
            if not data.endswith((b"\n", b"\r")):
                self.data = pa.py_buffer(data + b"\n")
        self.parse = {
            "delimiter": separator(path),
            "quote_char": quote or False,
            "newlines_in_values": bool(quote),
        }
        if has_header:
            found = self._header()
        elif columns:
            found = list(columns)
        else:
            raise InputError(f"{path}: a file without a header needs its column names")
        self.names = _unique(found)

    @contextmanager
    def _reader(
        self,
        block_bytes: int,
        on_invalid: Callable[[Any], str],
        columns: int | None,
        part: pa.Buffer | None = None,
        first: bool = True,
    ) -> Iterator[pacsv.CSVStreamingReader]:
        """Arrow's streaming reader; with a header, its columns are ``f0``, ``f1``, … and the header is row 1.

        ``columns``: read that many columns as text (None: let Arrow infer their types).
        ``part``: read these bytes of the file instead; the header is in the ``first`` part only.
        """
        headed = self.has_header and first
        types = None
        keys = [f"f{i}" for i in range(columns or 0)] if self.has_header else self.names
        if columns is not None:
            types = {key: pa.large_binary() if self.lossy else pa.string() for key in keys}
        # A path or an Arrow buffer, never a Python file object: Arrow's reader over one can hang
        # the interpreter's exit after a parse error.
        source = part if part is not None else self.data
        reader = pacsv.open_csv(
            str(self.path) if source is None else pa.BufferReader(source),
            read_options=pacsv.ReadOptions(
                block_size=block_bytes,
                use_threads=False,
                column_names=None if headed else keys,
                autogenerate_column_names=headed,
            ),
            parse_options=pacsv.ParseOptions(**self.parse, invalid_row_handler=on_invalid),
            # Only an empty field is null: "NA", "null" or "nan" are text (a band, a title, a weight to reject).
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, null_values=[""]
            ),
        )
        try:
            yield reader
        finally:
            reader.close()

    def _header(self) -> list[str]:
        """The header's names, from the first block (a small one first, a full one if the header needs it).

        Arrow counts the columns of the first row, then reads that row with every column as text.
        """
        for size in (min(1 << 16, self.block_bytes), self.block_bytes):
            try:
                with self._reader(size, _skip, None) as reader:
                    count = len(reader.schema)
                with self._reader(size, _skip, count) as reader:
                    first = reader.read_next_batch().slice(0, 1).to_pylist()[0]
            except pa.ArrowInvalid as exc:
                if "straddling" in str(exc) and size < self.block_bytes:
                    continue
                reason = _arrow_reason(exc, self.block_bytes)
                raise InputError(f"{self.path}: cannot be read as a table ({reason})") from exc
            return [_text(first[f"f{i}"]) for i in range(count)]
        raise AssertionError("unreachable")

    def batches(self, batch_rows: int) -> Iterator[pl.DataFrame]:
        """Arrow's blocks, each made a Polars frame, cut into batches of ``batch_rows`` rows or about
        ``batch_bytes`` bytes.

        Slices and concatenations without a copy. When the file cannot be read further, the rows
        before the failure come first, then the error.
        """
        pending: list[pl.DataFrame] = []
        rows = size = 0
        blocks = self._numbered()
        while True:
            try:
                part = next(blocks, None)
            except InputError:
                if rows:
                    yield pl.concat(pending, rechunk=False)
                raise
            if part is None:
                break
            pending.append(_frame(part))
            rows, size = rows + part.num_rows, size + part.nbytes
            while rows and (rows >= batch_rows or size >= self.batch_bytes):
                whole = pl.concat(pending, rechunk=False)
                take = min(rows, batch_rows, max(1, rows * self.batch_bytes // max(size, 1)))
                yield whole.slice(0, take)
                pending = [whole.slice(take)] if take < rows else []
                rows, size = rows - take, size * (rows - take) // rows
        if rows:
            yield pl.concat(pending, rechunk=False)

    def _numbered(self) -> Iterator[pa.Table]:
        """Arrow's blocks with ``_row`` and ``_invalid``, malformed rows merged in at their place.

        Arrow numbers every row it meets (the header is row 1, blank lines are skipped), the
        malformed ones it hands to ``on_invalid`` included, so the good rows of a block take the
        numbers that the malformed ones before and among them leave free. Malformed rows wait
        for the next good row: more than ``MAX_MALFORMED`` of them in a row stop the file.

        A line longer than the block is a row no block holds: Arrow would stop the file there.
        The file is read in parts around such lines instead, each line a malformed row.
        """
        invalid: list[tuple[int, str]] = []  # (data row number, reason), in file order
        expected = len(self.names)
        overflow: list[str] = []
        base = 0  # data rows before the part being read (the header is not one)
        offset = 1 if self.has_header else 0  # Arrow's number of the part's row before its first data row

        def on_invalid(row: Any) -> str:
            reason = _malformed(row.actual_columns, expected, row.text)
            if len(invalid) >= MAX_MALFORMED:  # Arrow stops the file: see failure()
                overflow.append(f"row {invalid[0][0]}: {invalid[0][1]}")
                return "error"
            invalid.append((base + (row.number or 0) - offset, reason))
            return "skip"

        def failure(exc: BaseException) -> InputError:
            if overflow:
                return InputError(
                    f"more than {MAX_MALFORMED:,} malformed rows in one stretch of the file "
                    f"(the first at {overflow[0]})"
                )
            return InputError(_arrow_reason(exc, self.block_bytes))

        schema = pa.schema(
            [pa.field(ROW, pa.int64()), pa.field(INVALID, pa.string())]
            + [pa.field(name, pa.string()) for name in self.names]
        )
        long_row = f"a row longer than {MAX_ROW_BYTES:,} bytes (the longest a text table may hold)"
        next_row = 1
        for number, part in enumerate(self._parts()):
            if part.data is None and number > 0:  # a line no part may hold: one malformed row
                seen = max(next_row - 1, invalid[-1][0] if invalid else 0)
                invalid.append((seen + 1, long_row))
                base = seen + 1
                continue
            header = self.has_header and number == 0  # the header is the first good row: still to drop
            try:
                with self._reader(part.block, on_invalid, expected, part.data, first=number == 0) as reader:
                    while True:
                        try:
                            block = reader.read_next_batch()
                        except StopIteration:
                            break
                        if header and block.num_rows:
                            block, header = block.slice(1), False
                        good = block.num_rows
                        if not good:
                            continue
                        # before[j]: how many good rows come before malformed row j (of those waiting).
                        numbers = np.array([number for number, _ in invalid], dtype=np.int64)
                        before = numbers - next_row - np.arange(len(numbers))
                        # Those that come before some row of this block take their place in it.
                        placed = int(np.searchsorted(before, good, side="left"))
                        k = np.arange(good)
                        row_numbers = next_row + k + np.searchsorted(before[:placed], k, side="right")
                        values = [_lossy(c) for c in block.columns] if self.lossy else block.columns
                        table = pa.Table.from_arrays(
                            [
                                pa.array(row_numbers, pa.int64()),
                                pa.nulls(good, pa.string()),
                                *values,
                            ],
                            schema=schema,
                        )
                        if placed:
                            table = pa.concat_tables(
                                [table, _malformed_rows(invalid[:placed], schema)]
                            ).sort_by(ROW)
                            del invalid[:placed]
                        next_row = int(row_numbers[-1]) + 1
                        yield table
            except pa.ArrowException as exc:
                raise failure(exc) from exc
            # The next part's rows come after every row read so far, good or malformed.
            base, offset = max(next_row - 1, invalid[-1][0] if invalid else 0), 0
        if invalid:
            yield _malformed_rows(invalid, schema)

    def _parts(self) -> Iterator[_Part]:
        """The file in parts: the whole file (the usual case) or, around each line longer than the
        block, the rows before it, the line on its own (read with a block that holds it) and so on.

        A line longer than ``MAX_ROW_BYTES`` is a part without data: a malformed row.
        """
        spans = self._long_lines()
        if not spans:
            yield _Part(None, self.block_bytes)
            return
        mapped = pa.memory_map(str(self.path))
        try:
            whole = mapped.read_buffer()
            start = 0
            for begin, end in spans:
                yield _Part(_ended(whole.slice(start, begin - start), self.block_bytes), self.block_bytes)
                length = end - begin
                if length > MAX_ROW_BYTES:
                    yield _Part(None, 0)
                else:
                    yield _Part(_ended(whole.slice(begin, length), length + 1), length + 2)
                start = end
            yield _Part(_ended(whole.slice(start), self.block_bytes), self.block_bytes)
        finally:
            mapped.close()

    def _long_lines(self) -> list[tuple[int, int]]:
        """(first byte, byte after its line break) of each line longer than the block, in file order."""
        size = self.path.stat().st_size
        if size <= self.block_bytes:
            return []
        spans: list[tuple[int, int]] = []
        last = -1  # the position of the last line break seen
        with open(self.path, "rb") as handle:
            position = 0
            while chunk := handle.read(_SCAN_BYTES):
                view = np.frombuffer(chunk, np.uint8)
                breaks = np.flatnonzero((view == 10) | (view == 13)) + position
                edges = np.concatenate([[last], breaks])
                gaps = np.flatnonzero(np.diff(edges) - 1 > self.block_bytes)
                spans += [(int(edges[i]) + 1, int(edges[i + 1]) + 1) for i in gaps]
                if breaks.size:
                    last = int(breaks[-1])
                position += len(chunk)
        if size - last - 1 > self.block_bytes:
            spans.append((last + 1, size))
        if spans and spans[0][0] == 0 and self.has_header:
            return []  # the header itself: reading it reports why the file cannot be read
        return spans


@dataclass
class _Part:
    """Bytes of a CSV file to read with one reader (None: the whole file by its path, or, after the
    first part, a line too long to read) and the block size to read them with."""

    data: pa.Buffer | None
    block: int


def _ended(data: pa.Buffer, up_to: int) -> pa.Buffer:
    """``data``, with a line break added when it has none and is at most ``up_to`` bytes
    (Arrow finds no row in a single line without one)."""
    if data.size > up_to or (data.size and data.slice(data.size - 1).to_pybytes() in (b"\n", b"\r")):
        return data
    return pa.py_buffer(data.to_pybytes() + b"\n")


def _skip(_row: Any) -> str:
    return "skip"


def _text(value: str | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""


def _lossy(values: pa.Array) -> pa.Array:
    """Bytes as text, where they are not UTF-8 with U+FFFD in their place (as Polars' ``utf8-lossy``)."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8 somewhere in this block: decode it value by value
        decoded = [None if v is None else v.decode("utf-8", "replace") for v in values.to_pylist()]
        return pa.array(decoded, pa.string())


def _unique(names: list[str]) -> list[str]:
    """Column names made unique as Polars does: a repeated ``a`` becomes ``a_duplicated_0``, …"""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        out.append(name if not seen[name] else f"{name}_duplicated_{seen[name] - 1}")
        seen[name] += 1
    return out


def _malformed(actual: int, expected: int, text: str | None) -> str:
    fields = "field" if actual == 1 else "fields"
    snippet = (text or "")[:80]
    return f"malformed row ({actual} {fields}, the header has {expected}): '{snippet}'"


def _malformed_rows(invalid: list[tuple[int, str]], schema: pa.Schema) -> pa.Table:
    n = len(invalid)
    arrays = [
        pa.array([number for number, _ in invalid], pa.int64()),
        pa.array([reason for _, reason in invalid], pa.string()),
    ] + [pa.nulls(n, pa.string()) for _ in schema.names[2:]]
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_reason(exc: BaseException, block_bytes: int) -> str:
    message = first_line(exc)
    if "straddling" in message:
        return f"a row longer than {block_bytes:,} bytes (the longest a text table may hold)"
    if "invalid UTF8" in message:
        return "bytes that are not UTF-8"
    return message


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def reject_input(engine: Engine, source: str, location: str, reason: str) -> None:
    """Store the reject row of an input that could not be read at all."""
    log = batches.RejectLog(source)
    log.add(location, reason)
    with write_transaction(engine) as conn:
        log.flush(conn)


def unreadable(engine: Engine, report: IngestReport, source: str, exc: InputError) -> None:
    message = str(exc)
    location, _, reason = message.partition(": ")
    report.unreadable.append(message)
    reject_input(engine, source, location, f"unreadable input: {reason or message}")


def load_stream(
    engine: Engine,
    *,
    source: str,
    location: str,
    checksum: str,
    chunks: Iterator[pl.DataFrame],
    load: LoadChunk,
    report: IngestReport,
    progress: Progress,
    task: object,
) -> None:
    """Load every chunk of one input under one ingest batch; a read failure mid-file marks it unreadable.

    Rows the parser could not split (``_invalid``) become rejects here, in their chunk's transaction.
    """
    with write_transaction(engine) as conn:
        batch_id = batches.open_batch(conn, source, location, checksum)
    loaded: Counter[str] = Counter()
    rejected = rows = 0
    status = "done"
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator, None)
        except (pl.exceptions.PolarsError, OSError, InputError) as exc:
            status = "failed"
            reason = f"unreadable after row {rows}: {first_line(exc)}"
            report.unreadable.append(f"{location}: {reason}")
            reject_input(engine, source, location, f"unreadable input: {reason}")
            break
        if chunk is None:
            break
        log = batches.RejectLog(source)
        if INVALID in chunk.columns:
            for number, reason in (
                chunk.filter(pl.col(INVALID).is_not_null()).select(ROW, INVALID).iter_rows()
            ):
                log.add(f"{location}: row {number}", reason)
            good = chunk.filter(pl.col(INVALID).is_null()).drop(INVALID)
        else:
            good = chunk
        with write_transaction(engine) as conn:
            counts = load(conn, good, batch_id, log)
            for row in log.rows:
                row["batch_id"] = batch_id
            report.add_rejects(log)
            rejected += len(log.rows)
            log.flush(conn)
        loaded.update(counts)
        report.add_loaded(**counts)
        rows += chunk.height
        progress.advance(task, chunk.height)
    with write_transaction(engine) as conn:
        batches.close_batch(
            conn,
            batch_id,
            loaded=max(rows - rejected, 0),
            rejected=rejected,
            detail=dict(loaded),
            status=status,
        )


def already_done(engine: Engine, source: str, location: str, checksum: str) -> bool:
    with engine.connect() as conn:
        return batches.find_done_batch(conn, source, location, checksum) is not None
