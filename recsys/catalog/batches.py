"""Ingest batches and reject rows: what was offered to the catalog, and what could not be taken."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from sqlalchemy import Connection, insert, select, update

from recsys.catalog.frames import REJECTS
from recsys.catalog.merges import insert_rejects
from recsys.catalog.schema import IngestBatch

RAW_LIMIT = 64 * 1024


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def reject_key(source: str, location: str, reason: str) -> str:
    return hashlib.sha256(f"{source}\x00{location}\x00{reason}".encode()).hexdigest()


def raw_text(record: Any) -> str:
    """A record as stored in a reject row: JSON where possible, truncated to 64 KiB."""
    if isinstance(record, bytes):
        out = record.decode("utf-8", errors="replace")
    elif isinstance(record, str):
        out = record
    else:
        try:
            out = orjson.dumps(record, default=str).decode()
        except TypeError:
            out = repr(record)
    return out[:RAW_LIMIT]


class RejectLog:
    """Collects rejects for one batch, to be stored with the chunk they belong to."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[dict[str, Any]] = []

    def add(self, location: str, reason: str, raw: Any = None, *, batch_id: int | None = None) -> None:
        self.rows.append(
            {
                "reject_key": reject_key(self.source, location, reason),
                "batch_id": batch_id,
                "source": self.source,
                "location": location,
                "reason": reason,
                "raw": None if raw is None else raw_text(raw),
            }
        )

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["reason"].split(":")[0]] = out.get(row["reason"].split(":")[0], 0) + 1
        return out

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=REJECTS)

    def flush(self, conn: Connection) -> int:
        stored = insert_rejects(conn, self.frame())
        self.rows.clear()
        return stored


def find_done_batch(conn: Connection, source: str, location: str, checksum: str) -> int | None:
    """The id of a finished batch for exactly this input, if there is one."""
    return conn.execute(
        select(IngestBatch.id).where(
            IngestBatch.source == source,
            IngestBatch.location == location,
            IngestBatch.checksum == checksum,
            IngestBatch.status == "done",
        )
    ).scalar()


def open_batch(conn: Connection, source: str, location: str, checksum: str) -> int:
    """Create (or reuse an unfinished) batch row for an input; committed with the data it brings."""
    existing = conn.execute(
        select(IngestBatch.id).where(
            IngestBatch.source == source, IngestBatch.location == location, IngestBatch.checksum == checksum
        )
    ).scalar()
    if existing is not None:
        return int(existing)
    result = conn.execute(
        insert(IngestBatch)
        .values(source=source, location=location, checksum=checksum, status="running", loaded=0, rejected=0)
        .returning(IngestBatch.id)
    )
    return int(result.scalar_one())


def close_batch(
    conn: Connection,
    batch_id: int,
    *,
    loaded: int,
    rejected: int,
    detail: dict[str, Any] | None = None,
    status: str = "done",
) -> None:
    conn.execute(
        update(IngestBatch)
        .where(IngestBatch.id == batch_id)
        .values(status=status, loaded=loaded, rejected=rejected, detail=detail, finished_at=datetime.now(UTC))
    )
