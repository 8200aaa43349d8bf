"""CSV/TSV files read by Arrow's streaming reader in blocks; their rows numbered, malformed ones in their place.

A CSV line longer than the reader's block is read on its own (up to ``MAX_ROW_BYTES``,
beyond which it is one rejected row) and the rows after it are read.
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
import pyarrow.csv as pacsv

from pipelines.ingest.table_batch import INVALID, ROW, first_line, lossy_text
from recsys.errors import InputError

# A line longer than the block is read on its own, with a block that holds it, up to this many bytes;
# a longer one is rejected (the rows after it are read).
MAX_ROW_BYTES = 64 << 20
# Malformed rows wait in memory for the next good row (to take their place among the rows): at most this many.
MAX_MALFORMED = 100_000
# Bytes of a file scanned at a time when looking for lines longer than the block.
_SCAN_BYTES = 8 << 20


def separator(path: Path) -> str:
    """The field separator: tab for .tsv/.tab, else the most frequent of , tab ; in the first line."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    with open(path, "rb") as handle:
        head = handle.readline(1 << 16)
    counts = {sep: head.count(sep.encode()) for sep in (",", "\t", ";")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


class CsvReader:
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
                        values = [lossy_text(c) for c in block.columns] if self.lossy else block.columns
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
