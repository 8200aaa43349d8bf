"""A load's memory of the rows it met: the latest of each, at most ``limit`` of them."""

from __future__ import annotations

import polars as pl

from recsys.catalog import bulk


def test_known_rows_replace_what_is_met_again_and_keep_the_latest() -> None:
    memory = bulk.KnownRows(bulk.KNOWN_ALBUMS, limit=4)
    for batch in (
        {"source_key": ["a", "b"], "id": [1, 2]},
        {"source_key": ["c", "a"], "id": [3, 10]},  # a met again: its row is replaced, not repeated
        {"source_key": ["d"], "id": [4]},
    ):
        memory.add(pl.DataFrame(batch, schema=bulk.KNOWN_ALBUMS))
    assert memory.frame.rows() == [("b", 2), ("c", 3), ("a", 10), ("d", 4)] and not memory.evicted
    memory.add(pl.DataFrame({"source_key": ["e", "e"], "id": [5, 6]}, schema=bulk.KNOWN_ALBUMS))
    assert memory.frame.rows() == [("c", 3), ("a", 10), ("d", 4), ("e", 6)] and memory.evicted
    assert memory.find(pl.Series(["a", "x", "a"])).rows() == [("a", 10)]
