"""A reader process queries the embedded store, as the UI does, through a whole nightly run with new
data: no query fails, every answer comes from one published version, and it sees the new one without
restarting."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pipelines.nightly.runner import run_nightly
from recsys.catalog.schema import Track
from tests.cli.child import child_env
from tests.nightly.conftest import Pipeline, make_pipeline
from tests.nightly.test_pipeline import _count

READER = textwrap.dedent(
    """
    import json, os, sys
    from recsys.vectorstore.edge import EdgeStore
    store = EdgeStore(sys.argv[1])
    with open(sys.argv[3], "w") as out:
        while not os.path.exists(sys.argv[2]):
            ids = [int(r.id) for r in store.scroll("tracks", with_vectors=False)]
            out.write(json.dumps([len(ids), len(set(ids))]) + "\\n")
            out.flush()
    """
)


def _answers(log: Path) -> list[list[int]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.endswith("]")]


def _wait_for(log: Path, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(a[0] == count for a in _answers(log)[-3:]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the reader never saw {count} points")


def test_a_reader_process_keeps_answering_through_a_nightly_run(shared_data: Path, tmp_path: Path) -> None:
    made: Pipeline = make_pipeline(f"sqlite:///{tmp_path / 'catalog.db'}", shared_data, tmp_path)
    made.add_slices(0, 12)
    made.add_audio(0, 3)
    config = made.config(als={"cadence": "weekly"})
    run_nightly(made.settings, made.engine, config)
    before = _count(made.engine, Track)

    stop, log = tmp_path / "stop", tmp_path / "answers.jsonl"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path / "vectors"), str(stop), str(log)],
        env=child_env(),
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(log, before)
        made.add_slices(12, 15)
        made.add_audio(3, 4)
        second = run_nightly(made.settings, made.engine, config)
        after = _count(made.engine, Track)
        _wait_for(log, after)  # the new version, without a restart
    finally:
        stop.touch()
        _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err.decode()  # no query failed
    assert second.worked == ["ingest", "embed-audio", "index"]
    answers = _answers(log)
    assert all(total == distinct for total, distinct in answers)
    # the versions published: the one before, the embedding's revision (the new audio track's
    # point), the index's revision (every new track); never a version half written
    assert {total for total, _ in answers} <= {before, before + 1, after}
    assert answers[0][0] == before and answers[-1][0] == after
    made.engine.dispose()
