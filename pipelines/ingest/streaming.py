"""Streaming a table file into the catalog in chunks, with its ingest batch and rejects.

A file is read in batches of at most ``batch_rows`` rows (and about ``BATCH_BYTES`` of
text) pulled one at a time (see ``open_table``), so a table larger than memory loads.
Each chunk is one transaction with its rejects; the file's ingest batch records the
totals, and a file already ingested with the same bytes is skipped.

A hostile file costs rejects, never the machine: a CSV line longer than the reader's
block is read on its own (:mod:`pipelines.ingest.csv_reader`), and a Parquet file is
read a row group at a time, its text values counted before they are expanded
(:mod:`pipelines.ingest.parquet_reader`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, Engine

from pipelines.ingest.csv_reader import CsvReader
from pipelines.ingest.guards import MAX_INPUT_BYTES, MAX_JSON_DEPTH
from pipelines.ingest.parquet_reader import ParquetReader
from pipelines.ingest.report import IngestReport, Progress
from pipelines.ingest.table_batch import INVALID, ROW, Table, first_line
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.errors import InputError

# (connection, chunk rows, batch id, reject log) -> rows loaded per kind
LoadChunk = Callable[[Connection, pl.DataFrame, int, batches.RejectLog], dict[str, int]]

TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat")
PARQUET_SUFFIXES = (".parquet", ".pq")
# A CSV is parsed by Arrow a block of this many bytes at a time: a longer line is read on its own.
BLOCK_BYTES = 1 << 20
# A batch ends at ``batch_rows`` rows or at about this many bytes of values, whichever comes first.
BATCH_BYTES = 64 << 20


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
            parquet = ParquetReader(
                path,
                max_input_bytes=max_input_bytes,
                max_json_depth=max_json_depth,
                batch_bytes=batch_bytes or BATCH_BYTES,
            )
            return Table(path, parquet.names, parquet.batches)
        if suffix in TEXT_SUFFIXES:
            if path.stat().st_size == 0:
                raise InputError(f"{path}: empty file")
            reader = CsvReader(
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


def load_new_input(
    engine: Engine,
    report: IngestReport,
    progress: Progress,
    title: str,
    source: str,
    location: str,
    checksum: str,
    chunks: Iterator[pl.DataFrame],
    load: LoadChunk,
) -> None:
    """Load one input's chunks under its ingest batch of ``source``, ``location`` and ``checksum``
    (:func:`load_stream`, with a progress line ``title``), unless an input of the same location
    and bytes is loaded already: that one is counted as skipped."""
    if already_done(engine, source, location, checksum):
        report.skipped += 1
        return
    task = progress.start(title, total=None)
    load_stream(
        engine,
        source=source,
        location=location,
        checksum=checksum,
        chunks=chunks,
        load=load,
        report=report,
        progress=progress,
        task=task,
    )


def already_done(engine: Engine, source: str, location: str, checksum: str) -> bool:
    with engine.connect() as conn:
        return batches.find_done_batch(conn, source, location, checksum) is not None
