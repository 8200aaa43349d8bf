"""Readers never see a half-built index: another process keeps querying while versions are published.

Qdrant Edge: the reader is a separate process (an embedded shard is opened by one
process at a time, so the reader holds the live version while this process rebuilds).
qdrant-client local mode: the reader is a thread (local mode is single-process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recsys.errors import LockedError
from recsys.vectorstore import CollectionSpec, Point, VectorSpec, VectorStore
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.edge import EdgeStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = CollectionSpec("gen", (VectorSpec("v", 16),), {})
N = 400


def generation(gen: int, n: int = N) -> list[Point]:
    """Every point of a generation carries its number; vectors differ between generations."""
    rng = np.random.default_rng(gen)
    return [Point(i, {"v": rng.normal(size=16)}, {"gen": gen}) for i in range(n)]


def broken(gen: int, after: int):
    yield from generation(gen)[:after]
    raise RuntimeError("embedding job crashed")


READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from recsys.vectorstore.edge import EdgeStore
    store = EdgeStore(sys.argv[1])
    stop = sys.argv[2]
    rng = np.random.default_rng(0)
    import os
    with open(sys.argv[3], "w") as out:
        while not os.path.exists(stop):
            hits = store.search("gen", rng.normal(size=16), using="v", limit=20)
            out.write(json.dumps(sorted({h.payload["gen"] for h in hits}) + [len(hits)]) + "\\n")
            out.flush()
    """
)


def _answers(log: Path) -> list[list[int]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.endswith("]")]


def _wait_for(log: Path, gen: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(a[:-1] == [gen] for a in _answers(log)[-5:]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the reader never served generation {gen}")


@pytest.mark.slow
def test_edge_reader_process_sees_whole_versions_only(fast_dir: Path) -> None:
    root, stop, log = fast_dir / "vectors", fast_dir / "stop", fast_dir / "answers.jsonl"
    writer = EdgeStore(root)
    writer.rebuild(SPEC, generation(1))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(root), str(stop), str(log)], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        _wait_for(log, 1)
        # The reader has version 1 open; this process reads it too, through a view of its own.
        assert {h.payload["gen"] for h in writer.search("gen", np.ones(16), using="v")} == {1}
        assert writer.rebuild(SPEC, generation(2), batch_size=50) == 2
        _wait_for(log, 2)
        with pytest.raises(RuntimeError, match="crashed"):
            writer.rebuild(SPEC, broken(3, after=200), batch_size=50)
        assert writer.current_version("gen") == 2
        time.sleep(0.3)
        assert writer.rebuild(SPEC, generation(4), batch_size=50) == 3
        _wait_for(log, 4)
        # The failed attempt left nothing behind: its number is reused. Version 1 stays while
        # this process still reads it, and goes once it moves on to version 3.
        assert writer.versions("gen") == [1, 2, 3]
        # Status works while another process reads the store, counted live.
        info = writer.describe("gen")
        assert (info.version, info.points, info.counted) == (3, N, "live")
        assert writer.versions("gen") == [2, 3]
        carried = list(writer.scroll("gen", batch_size=128))
        assert len(carried) == N and {r.payload["gen"] for r in carried} == {4}
    finally:
        stop.touch()
        _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err.decode()
    answers = _answers(log)
    assert len(answers) > 20
    served = [a[:-1] for a in answers]
    assert all(len(gens) == 1 for gens in served), "an answer mixed two versions"
    assert all(a[-1] == 20 for a in answers), "an answer came from a half-built version"
    assert {g[0] for g in served} == {1, 2, 4}
    writer.close()


def test_a_second_process_reads_what_the_first_holds_open(fast_dir: Path) -> None:
    root = fast_dir / "vectors"
    store = EdgeStore(root)
    store.ensure_collection(SPEC)
    store.upsert("gen", generation(1, 10))
    assert store.count("gen") == 10  # this process now has the current version open
    code = "import sys\nfrom recsys.vectorstore.edge import EdgeStore\nprint(EdgeStore(sys.argv[1]).count('gen'))\n"
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10"
    store.close()


def test_two_rebuilds_at_once_are_refused(fast_dir: Path) -> None:
    first, second = EdgeStore(fast_dir / "v"), EdgeStore(fast_dir / "v")
    first.ensure_collection(SPEC)

    def racing():
        yield from generation(2, 10)
        with pytest.raises(LockedError, match="already running"):
            second.rebuild(SPEC, generation(3, 10))

    assert first.rebuild(SPEC, racing()) == 2
    assert second.rebuild(SPEC, generation(3, 10)) == 3


def test_client_reader_thread_sees_whole_versions_only() -> None:
    store: VectorStore = ClientStore(":memory:")
    store.rebuild(SPEC, generation(1))
    answers: list[tuple[set[int], int]] = []
    stop = threading.Event()

    def read() -> None:
        rng = np.random.default_rng(0)
        while not stop.is_set():
            hits = store.search("gen", rng.normal(size=16), using="v", limit=20)
            answers.append(({h.payload["gen"] for h in hits}, len(hits)))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        store.rebuild(SPEC, generation(2), batch_size=50)
        with pytest.raises(RuntimeError, match="crashed"):
            store.rebuild(SPEC, broken(3, after=200), batch_size=50)
        assert store.current_version("gen") == 2
        store.rebuild(SPEC, generation(4), batch_size=50)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert answers and all(len(gens) == 1 and n == 20 for gens, n in answers)
    assert {next(iter(g)) for g, _ in answers} <= {1, 2, 4}
    assert next(iter(answers[-1][0])) == 4
    assert store.versions("gen") == [2, 3]
