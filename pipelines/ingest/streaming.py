"""Streaming a table file into the catalog in chunks, with its ingest batch and rejects.

A file is read in batches of ``batch_rows`` rows pulled one at a time (see
``open_table``), so a table larger than memory loads. Each chunk is
one transaction with its rejects; the file's ingest batch records the totals, and
a file already ingested with the same bytes is skipped.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine

from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.errors import InputError

# (connection, chunk rows, batch id, reject log) -> rows loaded per kind
LoadChunk = Callable[[Connection, pl.DataFrame, int, batches.RejectLog], dict[str, int]]

ROW = "_row"  # 1-based data row number (the header line is not counted)
TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat")
PARQUET_SUFFIXES = (".parquet", ".pq")


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
        """The rows as text columns plus ``_row`` (1-based), ``batch_rows`` at a time."""
        return self._batches(batch_rows)

    def read_all(self) -> pl.DataFrame:
        """Every row at once: only for small lookup tables (such as Last.fm's artists.dat)."""
        parts = list(self.batches(1_000_000))
        return pl.concat(parts) if parts else pl.DataFrame(schema=[ROW, *self.columns])


def open_table(
    path: Path,
    *,
    has_header: bool = True,
    columns: list[str] | None = None,
    quote: str | None = '"',
    lossy: bool = False,
) -> Table:
    """Open a CSV/TSV or Parquet file whose every column is read as text; InputError if it cannot be opened.

    Batches are pulled by the reader, never read ahead: a CSV is cut into runs of ``batch_rows``
    lines (never inside a quoted field) parsed by Polars one at a time, a Parquet file is sliced.
    (``LazyFrame.collect_batches`` reads ahead of a slow consumer, by hundreds of MiB here.) With
    ``lossy``, bytes that are not UTF-8 become U+FFFD (the caller rejects those rows) instead of
    failing the file.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return _open_parquet(path)
        if suffix in TEXT_SUFFIXES:
            if path.stat().st_size == 0:
                raise InputError(f"{path}: empty file")
            return _open_csv(path, has_header=has_header, columns=columns, quote=quote, lossy=lossy)
    except InputError:
        raise
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({first_line(exc)})") from exc
    raise InputError(f"{path}: not a CSV, TSV or Parquet file (extension {suffix or 'none'})")


def _open_parquet(path: Path) -> Table:
    frame = pl.scan_parquet(path)
    schema = frame.collect_schema()
    as_text = frame.select(
        [
            pl.col(name).list.eval(pl.element().cast(pl.String)).list.join("|")
            if isinstance(dtype, pl.List)
            else pl.col(name).cast(pl.String)
            for name, dtype in schema.items()
        ]
    )
    total = int(frame.select(pl.len()).collect().item())

    def batches(batch_rows: int) -> Iterator[pl.DataFrame]:
        for start in range(0, total, batch_rows):
            yield as_text.slice(start, batch_rows).collect().with_row_index(ROW, offset=start + 1)

    return Table(path, list(schema.names()), batches)


def _open_csv(
    path: Path, *, has_header: bool, columns: list[str] | None, quote: str | None, lossy: bool
) -> Table:
    sep = separator(path)
    options: dict[str, Any] = {
        "separator": sep,
        "quote_char": quote,
        "infer_schema": False,
        "encoding": "utf8-lossy" if lossy else "utf8",
    }
    with open(path, "rb") as handle:
        header = handle.readline().removeprefix(b"\xef\xbb\xbf") if has_header else b""
    if has_header:
        names = pl.read_csv(io.BytesIO(header.rstrip(b"\r\n") + b"\n"), has_header=True, **options).columns
    elif columns:
        names = list(columns)
    else:
        raise InputError(f"{path}: a file without a header needs its column names")
    quote_byte = quote.encode() if quote else None

    def parse(lines: list[bytes], first_row: int) -> pl.DataFrame:
        frame = pl.read_csv(io.BytesIO(b"".join(lines)), has_header=False, new_columns=names, **options)
        return frame.with_row_index(ROW, offset=first_row)

    def batches(batch_rows: int) -> Iterator[pl.DataFrame]:
        row = 1
        lines: list[bytes] = []
        quotes = 0
        with open(path, "rb") as handle:
            if has_header:
                handle.readline()
            for line in handle:
                if not line.strip():
                    continue
                lines.append(line if line.endswith(b"\n") else line + b"\n")
                if quote_byte:
                    quotes += line.count(quote_byte)
                if len(lines) >= batch_rows and quotes % 2 == 0:  # never cut inside a quoted field
                    frame = parse(lines, row)
                    row += frame.height
                    lines, quotes = [], 0
                    yield frame
        if lines:
            yield parse(lines, row)

    return Table(path, names, batches)


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
    """Load every chunk of one input under one ingest batch; a read failure mid-file marks it unreadable."""
    with write_transaction(engine) as conn:
        batch_id = batches.open_batch(conn, source, location, checksum)
    loaded: Counter[str] = Counter()
    rejected = rows = 0
    status = "done"
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator, None)
        except (pl.exceptions.PolarsError, OSError) as exc:
            status = "failed"
            reason = f"unreadable after row {rows}: {first_line(exc)}"
            report.unreadable.append(f"{location}: {reason}")
            reject_input(engine, source, location, f"unreadable input: {reason}")
            break
        if chunk is None:
            break
        log = batches.RejectLog(source)
        with write_transaction(engine) as conn:
            counts = load(conn, chunk, batch_id, log)
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
