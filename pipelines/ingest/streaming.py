"""Streaming a table file into the catalog in chunks, with its ingest batch and rejects.

A file is scanned lazily (``polars.scan_csv`` / ``scan_parquet``) and collected in
batches of ``batch_rows`` rows, so a table larger than memory loads. Each chunk is
one transaction with its rejects; the file's ingest batch records the totals, and
a file already ingested with the same bytes is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine

from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
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


def scan_table(
    path: Path,
    *,
    has_header: bool = True,
    columns: list[str] | None = None,
    quote: str | None = '"',
    lossy: bool = False,
) -> pl.LazyFrame:
    """A lazy frame of a CSV/TSV or Parquet file with every column as text; InputError if it cannot be opened.

    With ``lossy``, bytes that are not UTF-8 become U+FFFD (the caller rejects those rows) instead of
    failing the file.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            frame = pl.scan_parquet(path)
            schema = frame.collect_schema()
            frame = frame.select(
                [
                    pl.col(name).list.eval(pl.element().cast(pl.String)).list.join("|")
                    if isinstance(dtype, pl.List)
                    else pl.col(name).cast(pl.String)
                    for name, dtype in schema.items()
                ]
            )
        elif suffix in TEXT_SUFFIXES:
            if path.stat().st_size == 0:
                raise InputError(f"{path}: empty file")
            frame = pl.scan_csv(
                path,
                separator=separator(path),
                has_header=has_header,
                new_columns=columns,
                infer_schema=False,
                quote_char=quote,
                encoding="utf8-lossy" if lossy else "utf8",
            )
        else:
            raise InputError(f"{path}: not a CSV, TSV or Parquet file (extension {suffix or 'none'})")
        frame.collect_schema()
    except InputError:
        raise
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({first_line(exc)})") from exc
    return frame


def reject_input(engine: Engine, source: str, location: str, reason: str) -> None:
    """Store the reject row of an input that could not be read at all."""
    log = batches.RejectLog(source)
    log.add(location, reason)
    with engine.begin() as conn:
        log.flush(conn)


def unreadable(engine: Engine, report: IngestReport, source: str, exc: InputError) -> None:
    message = str(exc)
    location, _, reason = message.partition(": ")
    report.unreadable.append(message)
    reject_input(engine, source, location, f"unreadable input: {reason or message}")


def stream_batches(frame: pl.LazyFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    """The rows of ``frame`` with their row number, ``batch_rows`` at a time, never the whole file at once."""
    yield from frame.with_row_index(ROW, offset=1).collect_batches(chunk_size=batch_rows)


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
    with engine.begin() as conn:
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
        with engine.begin() as conn:
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
    with engine.begin() as conn:
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
