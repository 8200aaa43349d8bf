"""A failed merge stops the load at its own chunk: the chunks before it are done, its error is the one raised.

PostgreSQL merges a chunk's dimensions and the previous chunk's facts in two sessions at
once, so the dimensions of a later chunk can fail while the facts of an earlier one wait
to start; those facts must still be merged, and the user must get the real error, not
the loader's internal "abandoned" signal.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import pipelines.ingest.mpd as mpd
from recsys.catalog import db
from tests.ingest.test_crash import count_done, write_corpus


def test_facts_of_earlier_chunks_still_merge_when_a_later_chunk_fails(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "slices")
    third_failed = threading.Event()
    dimensions, facts = mpd._merge_dimensions, mpd._merge_facts
    calls = {"dimensions": 0, "facts": 0}

    def failing_dimensions(*args: Any) -> Any:
        calls["dimensions"] += 1
        if calls["dimensions"] == 3:
            third_failed.set()
            raise RuntimeError("planted failure")
        return dimensions(*args)

    def late_facts(*args: Any) -> Any:
        calls["facts"] += 1
        if calls["facts"] == 1:  # the facts writer falls behind until the third chunk's dimensions fail
            assert third_failed.wait(60)
        return facts(*args)

    monkeypatch.setattr(mpd, "_merge_dimensions", failing_dimensions)
    monkeypatch.setattr(mpd, "_merge_facts", late_facts)
    engine = db.make_engine(pg_url)
    try:
        with pytest.raises(RuntimeError, match="planted failure"):
            mpd.ingest_mpd(engine, [tmp_path / "slices"], batch_rows=1_000, defer_indexes=False)
    finally:
        engine.dispose()
    assert calls == {"dimensions": 3, "facts": 2}  # chunks 1 and 2 merged whole, nothing after the failure
    assert count_done(pg_url) == 4  # two chunks of two slices each
