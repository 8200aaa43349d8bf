"""One nightly run at a time: a lock the system releases when its holder dies.

On PostgreSQL a session-level advisory lock, taken on a connection of its own that
is held for the whole run (a dead process's connection closes and the server drops
the lock). On SQLite an ``flock`` on ``<catalog.db>-nightly.lock`` beside the
database (the kernel drops it with the process); the holder writes who it is into
that file. A second run does not wait: it raises :class:`LockedError` at once with
one line naming the running one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from recsys.catalog import runs
from recsys.errors import LockedError

JOB = runs.NIGHTLY
# Any fixed 64-bit number, distinct from the bulk loader's (recsys.catalog.deferred).
_LOCK_KEY = 7_415_322_611_906_021_118


def lock_file(engine: Engine) -> Path | None:
    """The lock file of a SQLite catalog (None: PostgreSQL, or SQLite in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + "-nightly.lock")


@contextmanager
def nightly_lock(engine: Engine) -> Iterator[None]:
    """Hold the nightly lock for the block, or raise LockedError naming the run that holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            taken = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_LOCK_KEY})").scalar())
            conn.commit()  # the lock belongs to the session, not to this transaction
            if not taken:
                raise LockedError(_holder(engine, None))
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
                conn.commit()
        return
    path = lock_file(engine)
    if path is None:
        yield
        return
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(_holder(engine, _read_owner(handle))) from None
        try:
            _write_owner(handle)
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_owner(handle: IO[str]) -> None:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": datetime.now(UTC).isoformat()}
    handle.seek(0)
    handle.truncate(0)
    handle.write(json.dumps(owner))
    handle.flush()


def _read_owner(handle: IO[str]) -> dict[str, Any] | None:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "null")
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def _holder(engine: Engine, owner: dict[str, Any] | None) -> str:
    """One line naming the nightly run that holds the lock."""
    with engine.connect() as conn:
        going = [run for run in runs.running_runs(conn) if run.job == JOB]
    if going:
        return f"a nightly run is going: {going[-1].describe()}"
    if owner:
        return (
            f"a nightly run is starting: process {owner.get('pid')} on {owner.get('host')}, "
            f"started {str(owner.get('started_at', '?'))[:19].replace('T', ' ')} UTC"
        )
    return "a nightly run is starting (it holds the lock and has not recorded its run yet)"
