"""New rows copied straight into their table take a block of ids from its sequence (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import polars as pl
import sqlalchemy as sa

from recsys.catalog import staging


def albums(*keys: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"source_key": list(keys), "title": [f"Title of {k}" for k in keys]},
        schema={"source_key": pl.String, "title": pl.String},
    )


def insert_one(engine: sa.Engine, key: str) -> int:
    """An album inserted the ordinary way, its id from the column default."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text("INSERT INTO album (source_key, title) VALUES (:k, 'x') RETURNING id"), {"k": key}
            ).scalar_one()
        )


def stored(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(sa.text("SELECT source_key, id FROM album"))}


def test_rows_take_one_block_that_ordinary_inserts_never_reuse(pg_engine: sa.Engine) -> None:
    before = insert_one(pg_engine, "a:before")
    with pg_engine.begin() as conn:
        copied = staging.copy_new_rows(conn, "album", albums("a:1", "a:2", "a:3"))
    assert copied is not None
    ids = copied["id"].to_list()
    assert ids == [before + 1, before + 2, before + 3]  # consecutive, in row order, after what was drawn
    assert copied["source_key"].to_list() == ["a:1", "a:2", "a:3"]
    after = insert_one(pg_engine, "a:after")
    assert after == before + 4
    assert stored(pg_engine) == {
        "a:before": before,
        "a:1": ids[0],
        "a:2": ids[1],
        "a:3": ids[2],
        "a:after": after,
    }
    with pg_engine.connect() as conn:
        titles = dict(conn.execute(sa.text("SELECT source_key, title FROM album")).all())
    assert titles["a:2"] == "Title of a:2"


def test_a_row_already_there_writes_nothing_and_leaves_the_transaction_usable(pg_engine: sa.Engine) -> None:
    existing = insert_one(pg_engine, "a:2")
    with pg_engine.begin() as conn:
        assert staging.copy_new_rows(conn, "album", albums("a:1", "a:2", "a:3")) is None
        conn.execute(sa.text("INSERT INTO album (source_key, title) VALUES ('a:later', 'y')"))
    assert set(stored(pg_engine)) == {"a:2", "a:later"}
    assert stored(pg_engine)["a:2"] == existing


def test_an_insert_from_another_session_waits_for_the_block_to_commit(pg_engine: sa.Engine) -> None:
    """While a transaction holds a block, another session's insert cannot take an id inside it."""
    drawn: list[int] = []
    with pg_engine.begin() as conn:
        copied = staging.copy_new_rows(conn, "album", albums("a:1", "a:2"))
        assert copied is not None
        worker = threading.Thread(target=lambda: drawn.append(insert_one(pg_engine, "a:other")))
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()  # waiting for the table lock, not drawing from the sequence
    worker.join(timeout=30)
    assert drawn and drawn[0] not in copied["id"].to_list()
    assert stored(pg_engine)["a:other"] == drawn[0]


def test_sqlite_declines(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.begin() as conn:
        assert staging.copy_new_rows(conn, "album", albums("a:1")) is None
    assert stored(sqlite_engine) == {}
