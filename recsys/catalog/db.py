"""Engines, sessions and migrations for the catalog database (PostgreSQL or SQLite).

SQLite has one writer at a time. A write waits up to the busy timeout
(``busy_timeout_s``, the setting ``RECSYS_SQLITE_BUSY_TIMEOUT_S``, 30 s by default)
for another process's write lock; :func:`write_transaction` takes the lock when the
transaction starts, before it reads or writes anything, so a transaction that found
the database busy can safely start again: it does so ``lock_retries`` times
(``RECSYS_SQLITE_LOCK_RETRIES``, 3 by default) after 1 s, 2 s, 4 s, ... Whatever still
finds the database locked raises one :class:`~recsys.errors.LockedError` naming the
database, never SQLAlchemy's ``OperationalError``; a database that cannot be reached
at all is a one-line :class:`~recsys.errors.CatalogError`.

PostgreSQL waits for a lock another session holds (an ingest behind a bulk load's
``LOCK TABLE``, an index rebuild, a migration) at most ``lock_timeout_s``
(``RECSYS_PG_LOCK_TIMEOUT_S``, 300 s by default; the session's ``lock_timeout``, set
when it connects): then the statement fails, its transaction is rolled back, and the
same one-line :class:`~recsys.errors.LockedError` says the database was busy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.errors import LockNotAvailable
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from recsys.config import Settings
from recsys.errors import CatalogError, LockedError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
BUSY_TIMEOUT_S = 30.0
LOCK_RETRIES = 3
LOCK_BACKOFF_S = 1.0  # the first wait before a busy transaction starts again; doubled each time
LOCK_TIMEOUT_S = 300.0  # PostgreSQL: the longest wait for another session's lock
_BUSY_OPTION, _RETRIES_OPTION = "recsys_busy_timeout_s", "recsys_lock_retries"
_LOCK_TIMEOUT_OPTION = "recsys_lock_timeout_s"

log = logging.getLogger(__name__)


def _sqlite_pragmas(busy_timeout_s: float) -> Any:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
        cursor.close()

    return pragmas


def _pg_session(lock_timeout_s: float) -> Any:
    def session(dbapi_connection: Any, _record: Any) -> None:
        # Outside a transaction, so that the setting outlives it (a rolled-back SET is undone).
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {max(1, round(lock_timeout_s * 1000))}")
        dbapi_connection.autocommit = autocommit

    return session


def _is_locked(error: BaseException) -> bool:
    text = str(error)
    return "database is locked" in text or "database table is locked" in text


def pg_busy(engine: Engine) -> LockedError:
    """The error of a PostgreSQL statement that waited ``lock_timeout`` for another session's lock."""
    timeout = engine.get_execution_options().get(_LOCK_TIMEOUT_OPTION, LOCK_TIMEOUT_S)
    return LockedError(
        f"catalog database {describe(engine)} is busy: another session has held a lock this command needs "
        f"for more than {timeout:g} s (RECSYS_PG_LOCK_TIMEOUT_S), as a bulk load, an index rebuild or a "
        "migration can; nothing of the transaction was written: run the command again when that session "
        "is done, or raise RECSYS_PG_LOCK_TIMEOUT_S"
    )


def _named_errors(context: ExceptionContext) -> BaseException | None:
    """SQLAlchemy's error as a named recsys error, where it is one a user can act on."""
    engine = context.engine
    if engine is None or context.is_pre_ping:
        return None
    if engine.dialect.name == "sqlite" and _is_locked(context.original_exception):
        timeout = engine.get_execution_options().get(_BUSY_OPTION, BUSY_TIMEOUT_S)
        return LockedError(
            f"catalog database {describe(engine)} is busy: another process has held its write lock for more "
            f"than {timeout:g} s (RECSYS_SQLITE_BUSY_TIMEOUT_S), as a bulk load or an index rebuild can; "
            "run the command again when that process is done, or raise RECSYS_SQLITE_BUSY_TIMEOUT_S"
        )
    if engine.dialect.name == "postgresql" and isinstance(context.original_exception, LockNotAvailable):
        return pg_busy(engine)
    if context.connection is None and isinstance(context.sqlalchemy_exception, OperationalError):
        reason = str(context.original_exception).strip().splitlines()
        return CatalogError(
            f"cannot reach the catalog database at {describe(engine)}: {reason[0] if reason else 'no reason given'}"
        )
    return None


def make_engine(
    url: str,
    *,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    lock_retries: int = LOCK_RETRIES,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``; for SQLite the parent folder is created and WAL mode switched on.

    ``busy_timeout_s`` and ``lock_retries`` apply to SQLite, ``lock_timeout_s`` to PostgreSQL
    (see the module docstring).
    """
    parsed = make_url(url)
    options = {
        _BUSY_OPTION: busy_timeout_s,
        _RETRIES_OPTION: lock_retries,
        _LOCK_TIMEOUT_OPTION: lock_timeout_s,
    }
    kwargs["execution_options"] = {**kwargs.get("execution_options", {}), **options}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_s))
    else:
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            # Plain postgresql:// would pick psycopg2; the project ships psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _pg_session(lock_timeout_s))
    event.listen(engine, "handle_error", _named_errors)
    return engine


@contextmanager
def write_transaction(engine: Engine, *, sleep: Any = time.sleep) -> Iterator[Connection]:
    """A transaction that writes: committed on success, rolled back on error.

    On SQLite it takes the database's write lock first (``BEGIN IMMEDIATE``), waiting
    up to the busy timeout; when another process still holds it, the transaction
    starts again after 1 s, 2 s, 4 s, ... up to the engine's ``lock_retries`` times,
    then raises :class:`LockedError`. Nothing has been read or written when it starts
    again, so nothing is lost or done twice. On PostgreSQL it is ``engine.begin()``; a
    statement that waited out the lock timeout (also one sent straight to the driver, such
    as a ``COPY``) rolls it back and raises :class:`LockedError`.
    """
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                _lock_for_writing(conn, engine, sleep)
            yield conn
    except LockNotAvailable:
        raise pg_busy(engine) from None


def _lock_for_writing(conn: Connection, engine: Engine, sleep: Any) -> None:
    options = engine.get_execution_options()
    retries = int(options.get(_RETRIES_OPTION, LOCK_RETRIES))
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except LockedError as exc:
            if attempt == retries:
                waited = time.monotonic() - started
                raise LockedError(
                    f"{exc} (tried {retries + 1} times over {waited:.0f} s; RECSYS_SQLITE_LOCK_RETRIES)"
                ) from None
            pause = LOCK_BACKOFF_S * 2**attempt
            log.debug(
                "catalog database %s is busy: starting the transaction again in %g s (retry %d of %d)",
                describe(engine),
                pause,
                attempt + 1,
                retries,
            )
            sleep(pause)


def settings_engine(settings: Settings) -> Engine:
    """The catalog engine the settings describe, with their lock waits and retries."""
    return make_engine(
        settings.catalog_url,
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        lock_retries=settings.sqlite_lock_retries,
        lock_timeout_s=settings.pg_lock_timeout_s,
    )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise CatalogError(f"cannot reach the catalog database at {describe(engine)}: {exc.orig}") from exc


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise CatalogError(f"cannot reach the catalog database at {describe(engine)}: {exc.orig}") from exc


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def require_current(engine: Engine) -> None:
    """Raise a one-line CatalogError unless the database is migrated to the newest revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "not initialised" if current is None else f"at revision {current}, code expects {head}"
        raise CatalogError(f"catalog database {describe(engine)} is {state}: run `recsys db upgrade`")


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
