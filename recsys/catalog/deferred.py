"""Secondary indexes and foreign keys set aside during a bulk load, and rebuilt after it.

Loading millions of playlist entries into tables that keep nine secondary indexes
and three foreign keys up to date costs one B-tree descent per index and one
trigger query per key for every row. The bulk loader reads none of them: it looks
rows up by their unique ``source_key`` only. So a large load drops them first and
rebuilds them at the end, as ``pg_restore`` does: a ``CREATE INDEX`` sorts once,
which is several times cheaper than as many single-row insertions, and a foreign
key is validated by one join instead of a trigger call per row.

What is deferred is named by the schema itself (:data:`DEFERRABLE_INDEXES`,
:data:`DEFERRABLE_FOREIGN_KEYS`); the definitions rebuilt are those of
:mod:`recsys.catalog.schema`, the same the migrations create. Nothing is kept
anywhere else, so a load killed halfway loses nothing: the next bulk load, or
``recsys db upgrade``, finds what is missing and rebuilds it. Until then queries
are correct, only slower, and ``recsys db status`` names what is missing.

A lock marks a load that has indexes set aside, so that a second process (a plain
ingest, ``recsys db upgrade``) never rebuilds them under a running load: it leaves
them to the load, and rebuilds them itself once the load's process is gone. On
PostgreSQL it is a session advisory lock; on SQLite an ``flock`` on a file beside
the database (``catalog.db-load.lock``), held for the load's lifetime and released
by the system when its process ends, however it ends. SQLite cannot drop a foreign
key without rebuilding the table, so there only indexes are deferred.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, Index, inspect
from sqlalchemy.schema import AddConstraint, CreateIndex

from recsys.catalog.db import write_transaction
from recsys.catalog.schema import Base

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: SQLite loads go unmarked
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Non-unique indexes of the tables a catalog load writes; the loader never reads them.
DEFERRABLE_INDEXES = (
    "ix_artist_name_key",
    "ix_album_artist_id",
    "ix_track_spotify_uri",
    "ix_track_isrc",
    "ix_track_artist_id",
    "ix_track_album_id",
    "ix_track_recording_key",
    "ix_track_artist_artist_id",
    "ix_playlist_track_track_id",
)
# Foreign keys among the dimension tables; the loader resolves these ids itself.
DEFERRABLE_FOREIGN_KEYS = (
    "fk_album_artist_id_artist",
    "fk_track_artist_id_artist",
    "fk_track_album_id_album",
)
# Any fixed 64-bit number: the session lock held by a load with objects set aside.
_LOCK_KEY = 0x7265637379734458


def _schema_objects() -> tuple[dict[str, Index], dict[str, ForeignKeyConstraint]]:
    """The deferrable indexes and foreign keys, by name, as the schema defines them."""
    indexes: dict[str, Index] = {}
    keys: dict[str, ForeignKeyConstraint] = {}
    for table in Base.metadata.sorted_tables:
        indexes.update((str(i.name), i) for i in table.indexes if i.name in DEFERRABLE_INDEXES)
        keys.update(
            (str(k.name), k) for k in table.foreign_key_constraints if k.name in DEFERRABLE_FOREIGN_KEYS
        )
    assert set(indexes) | set(keys) == {*DEFERRABLE_INDEXES, *DEFERRABLE_FOREIGN_KEYS}, "the schema changed"
    return indexes, keys


def _tables() -> set[str]:
    indexes, keys = _schema_objects()
    return {str(i.table.name) for i in indexes.values() if i.table is not None} | {
        str(k.table.name) for k in keys.values()
    }


def missing(conn: Connection) -> list[str]:
    """Names of the deferrable indexes and foreign keys the database lacks, in rebuild order."""
    inspector = inspect(conn)
    present: set[str] = set()
    for table in _tables():
        present.update(str(i["name"]) for i in inspector.get_indexes(table))
        if conn.dialect.name == "postgresql":
            present.update(str(k["name"]) for k in inspector.get_foreign_keys(table))
    names = list(DEFERRABLE_INDEXES)
    if conn.dialect.name == "postgresql":
        names += DEFERRABLE_FOREIGN_KEYS
    return [name for name in names if name not in present]


@dataclass
class DeferReport:
    """What one bulk load set aside and how long rebuilding took."""

    deferred: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    rebuild_s: float = 0.0


def lock_file(engine: Engine) -> Path | None:
    """The file whose lock marks a SQLite load with indexes set aside (None: PostgreSQL, or SQLite in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + "-load.lock")


@contextmanager
def _load_lock(engine: Engine) -> Iterator[bool]:
    """Hold the load lock for the block; yields False (holding nothing) when another process holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            taken = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_LOCK_KEY})").scalar())
            conn.commit()  # the lock belongs to the session, not to this transaction
            try:
                yield taken
            finally:
                if taken:
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
                    conn.commit()
        return
    path = lock_file(engine)
    if path is None or fcntl is None:
        yield True
        return
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_running(engine: Engine) -> bool:
    """Whether another process's load holds the lock now (its indexes are set aside on purpose)."""
    with _load_lock(engine) as taken:
        return not taken


def rebuild(engine: Engine) -> list[str]:
    """Rebuild every deferrable index and foreign key the database lacks; returns their names.

    Does nothing while another process holds a load's lock (its own load rebuilds
    them when it ends). Each object is rebuilt and committed on its own.
    """
    with deferred(engine, enabled=False) as report:
        pass
    return report.rebuilt


# Indexes built at the same time on PostgreSQL, each in its own session: one sorts while
# another writes its index out, and a small table's index does not wait for a large one's.
REBUILD_SESSIONS = 2


def _rebuild(engine: Engine) -> list[str]:
    indexes, keys = _schema_objects()
    with engine.connect() as conn:
        todo = missing(conn)

    def build(name: str) -> None:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                # Sorting in memory and with parallel workers; this transaction only.
                conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
            if name in indexes:
                conn.execute(CreateIndex(indexes[name]))
            else:
                conn.execute(AddConstraint(keys[name]))

    # Indexes first, the entries' (the largest) first; then the foreign keys one at a time (each locks two tables).
    built = [name for name in todo if name in indexes]
    sessions = REBUILD_SESSIONS if engine.dialect.name == "postgresql" else 1
    with ThreadPoolExecutor(max_workers=sessions, thread_name_prefix="rebuild") as pool:
        list(pool.map(build, sorted(built, key=lambda name: name != "ix_playlist_track_track_id")))
    for name in todo:
        if name not in indexes:
            build(name)
    return todo


def _drop(engine: Engine) -> list[str]:
    keys = _schema_objects()[1]
    with write_transaction(engine) as conn:
        absent = set(missing(conn))
        dropped = []
        if conn.dialect.name == "postgresql":
            for name in DEFERRABLE_FOREIGN_KEYS:
                if name not in absent:
                    table = keys[name].table.name
                    conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
                    dropped.append(name)
        for name in DEFERRABLE_INDEXES:
            if name not in absent:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
                dropped.append(name)
    return dropped


def catalog_entries(engine: Engine) -> int:
    """About how many playlist entries the catalog holds (cheap: no count of the table)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Heap bytes over the bytes of one row (tuple header, two ids, a position, alignment).
            size = conn.exec_driver_sql("SELECT pg_relation_size('playlist_track')").scalar()
            return int(size or 0) // 48
        return int(conn.exec_driver_sql("SELECT max(rowid) FROM playlist_track").scalar() or 0)


@contextmanager
def deferred(engine: Engine, enabled: bool = True) -> Iterator[DeferReport]:
    """Set the deferrable indexes and foreign keys aside for the block (when ``enabled``), rebuild them after it.

    At the end, whether the block succeeded or raised, and whether or not it set
    anything aside itself, whatever is missing is rebuilt: what a killed load left
    behind too. When another process's load holds them, this one leaves them to it.
    """
    report = DeferReport()
    with _load_lock(engine) as taken:
        if not taken:
            log.debug("another process's load has indexes set aside: leaving them to it")
            yield report
            return
        try:
            if enabled:
                report.deferred = _drop(engine)
                log.debug("set aside for the load: %s", ", ".join(report.deferred))
            yield report
        finally:
            start = time.perf_counter()
            report.rebuilt = _rebuild(engine)
            report.rebuild_s = time.perf_counter() - start
            if report.rebuilt:
                log.debug("rebuilt in %.1f s: %s", report.rebuild_s, ", ".join(report.rebuilt))
