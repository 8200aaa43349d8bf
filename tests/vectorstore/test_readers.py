"""The embedded store with readers in other processes while a job publishes new versions.

Every point of a generation carries its number in the payload, so an answer that mixed
two versions, or came from a half-written one, shows. Readers are separate processes
(the UI and a command-line query), never restarted.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recsys.vectorstore import CollectionSpec, Point, VectorSpec
from recsys.vectorstore.edge import EdgeStore
from recsys.vectorstore.edge_readers import READERS

ROOT = Path(__file__).resolve().parents[2]
SPEC = CollectionSpec("gen", (VectorSpec("v", 16),), {})
N = 300

LOOPING_READER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from recsys.vectorstore.edge import EdgeStore
    store = EdgeStore(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[4]))
    with open(sys.argv[3], "w") as out:
        while not os.path.exists(sys.argv[2]):
            hits = store.search("gen", rng.normal(size=16), using="v", limit=20)
            out.write(json.dumps([sorted({h.payload["gen"] for h in hits}), len(hits)]) + "\\n")
            out.flush()
    store.close()
    """
)

STEPPED_READER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from recsys.vectorstore.edge import EdgeStore
    store = EdgeStore(sys.argv[1], keep_versions=1)
    for line in sys.stdin:
        if line.strip() == "exit":
            break
        hits = store.search("gen", np.ones(16), using="v", limit=20)
        print(json.dumps(sorted({h.payload["gen"] for h in hits})), flush=True)
    store.close()
    """
)


def generation(gen: int, n: int = N) -> list[Point]:
    rng = np.random.default_rng(gen)
    return [Point(i, {"v": rng.normal(size=16)}, {"gen": gen}) for i in range(n)]


def _answers(log: Path) -> list[tuple[list[int], int]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [tuple(json.loads(line)) for line in lines if line.endswith("]")]  # type: ignore[misc]


def _wait_for(log: Path, gen: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(gens == [gen] for gens, _ in _answers(log)[-3:]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the reader writing {log.name} never served generation {gen}")


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _views(root: Path) -> list[str]:
    readers = root / "gen" / READERS
    return sorted(p.name for p in readers.iterdir() if p.is_dir()) if readers.is_dir() else []


@pytest.fixture
def stepped(fast_dir: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A reader process that queries once per line written to it."""
    root = fast_dir / "vectors"
    EdgeStore(root).rebuild(SPEC, generation(1))
    reader = subprocess.Popen(
        [sys.executable, "-c", STEPPED_READER, str(root)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield root, reader
    if reader.poll() is None:
        reader.kill()
    reader.communicate(timeout=60)


def _ask(reader: subprocess.Popen[str]) -> list[int]:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write("q\n")
    reader.stdin.flush()
    line = reader.stdout.readline()
    assert line, reader.stderr.read() if reader.stderr else "the reader died"
    return json.loads(line)


@pytest.mark.slow
def test_two_reader_processes_follow_revisions_and_rebuilds(fast_dir: Path) -> None:
    root, stop = fast_dir / "vectors", fast_dir / "stop"
    writer = EdgeStore(root)
    writer.rebuild(SPEC, generation(1))
    logs = [fast_dir / f"reader{i}.jsonl" for i in range(2)]
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", LOOPING_READER, str(root), str(stop), str(log), str(i)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for i, log in enumerate(logs)
    ]
    try:
        for log in logs:
            _wait_for(log, 1)
        with writer.revise("gen") as draft:  # every point re-tagged: a revision of the serving version
            draft.upsert(generation(2), batch_size=50)
        for log in logs:
            _wait_for(log, 2)
        assert writer.rebuild(SPEC, generation(3), batch_size=50) == 3
        for log in logs:
            _wait_for(log, 3)
        with writer.revise("gen") as draft:
            draft.delete(list(range(N - 10, N)))
            draft.upsert(generation(4, N - 10), batch_size=50)
        for log in logs:
            _wait_for(log, 4)
    finally:
        stop.touch()
        errors = [reader.communicate(timeout=60)[1] for reader in readers]
    for reader, err in zip(readers, errors, strict=True):
        assert reader.returncode == 0, err.decode()  # no query failed
    for log in logs:
        answers = _answers(log)
        assert all(len(gens) == 1 and n == 20 for gens, n in answers), "an answer mixed versions"
        served = [gens[0] for gens, _ in answers]
        assert served == sorted(served) and set(served) == {1, 2, 3, 4}
    assert _views(root) == []  # the readers removed their views as they ended
    assert writer.count("gen") == N - 10
    writer.close()


def test_opening_and_querying_a_published_version_changes_none_of_its_files(fast_dir: Path) -> None:
    root = fast_dir / "vectors"
    writer = EdgeStore(root)
    writer.rebuild(SPEC, generation(1))
    before = _checksums(root / "gen" / "v1")
    code = (
        "import sys\nimport numpy as np\nfrom recsys.vectorstore.edge import EdgeStore\n"
        "s = EdgeStore(sys.argv[1])\n"
        "for _ in range(20): s.search('gen', np.random.normal(size=16), using='v', limit=5)\n"
        "print(s.count('gen'))\ns.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == str(N), done.stderr
    assert writer.search("gen", np.ones(16), using="v", limit=3)
    with writer.revise("gen") as draft:  # the copy is written, never the version it copies
        draft.delete([0, 1])
    assert _checksums(root / "gen" / "v1") == before
    writer.close()


def test_an_old_version_goes_only_once_its_readers_moved_on(
    stepped: tuple[Path, subprocess.Popen[str]],
) -> None:
    root, reader = stepped
    writer = EdgeStore(root, keep_versions=1)
    assert _ask(reader) == [1]  # the reader holds version 1
    with writer.revise("gen") as draft:
        draft.upsert(generation(2))
    assert (root / "gen" / "v1").is_dir() and writer.versions("gen") == [1, 2]  # still read
    assert _ask(reader) == [2]  # it moves on and lets version 1 go
    assert not (root / "gen" / "v1").exists() and writer.versions("gen") == [2]
    assert len(_views(root)) == 1
    # A reader killed outright leaves its view; the next collection removes it and the version.
    reader.kill()
    reader.wait(timeout=60)
    assert writer.rebuild(SPEC, generation(3)) == 3
    assert _views(root) == [] and writer.versions("gen") == [3]
    writer.close()


WRITER_KILLED_MID_REVISION = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from pathlib import Path
    from recsys.vectorstore import Point
    from recsys.vectorstore.edge import EdgeStore
    store = EdgeStore(sys.argv[1])
    with store.revise("gen") as draft:
        draft.upsert([Point(i, {"v": np.ones(16)}, {"gen": 99}) for i in range(50)])
        draft.delete(list(range(50, 100)))
        Path(sys.argv[2]).touch()
        time.sleep(120)
    """
)


def test_a_writer_killed_mid_revision_leaves_the_serving_version(
    stepped: tuple[Path, subprocess.Popen[str]], fast_dir: Path
) -> None:
    root, reader = stepped
    marker = fast_dir / "drafting"
    assert _ask(reader) == [1]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_KILLED_MID_REVISION, str(root), str(marker)], cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started its draft"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    assert (root / "gen" / "v2").is_dir()  # the abandoned draft
    store = EdgeStore(root)
    assert store.current_version("gen") == 1 and store.count("gen") == N
    assert _ask(reader) == [1]
    with store.revise("gen") as draft:  # the writer's lock died with it; the draft is cleared
        assert draft.version == 2
        draft.delete([0])
    assert store.count("gen") == N - 1 and len(store.retrieve("gen", list(range(50, 100)))) == 50
    assert {r.payload["gen"] for r in store.scroll("gen", with_vectors=False)} == {1}
    assert _ask(reader) == [1]  # gen 1 still, from version 2
    store.close()
