"""Revisions of the embedded store share a sealed segment's write-once files with the version
they start from: a revision of a large collection must not copy its vectors, and must never
change a byte of the version that serves (readers hold it, and so do older drafts' links)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from recsys.vectorstore import CollectionSpec, FieldType, Point, VectorSpec
from recsys.vectorstore.edge import EdgeStore
from recsys.vectorstore.edge_convert import EdgeSearchSettings
from recsys.vectorstore.edge_versions import FICLONE, SEALED_FILES

SPEC = CollectionSpec("big", (VectorSpec("v", 32), VectorSpec("w", 8)), {"tag": FieldType.KEYWORD})
N = 3000
# Qdrant indexes a segment once its vectors pass the threshold: 1 kB makes this small
# collection's segments indexed (immutable, with an HNSW graph), as a real one's are.
SETTINGS = EdgeSearchSettings(indexing_threshold_kb=1, max_segment_kb=200, indexing_threads=1)


def points(ids: range, gen: int) -> list[Point]:
    rng = np.random.default_rng(gen)
    return [
        Point(i, {"v": rng.normal(size=32), "w": rng.normal(size=8)}, {"gen": gen, "tag": f"t{i % 5}"})
        for i in ids
    ]


def files(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file of a version: its inode and a checksum of its bytes."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sealed(found: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    return {k: v for k, v in found.items() if os.path.basename(k) in SEALED_FILES}


def reflinks(folder: Path) -> bool:
    """Whether the file system clones files (then a revision clones instead of linking)."""
    with tempfile.NamedTemporaryFile(dir=folder) as a, tempfile.NamedTemporaryFile(dir=folder) as b:
        a.write(b"x")
        a.flush()
        try:
            fcntl.ioctl(b.fileno(), FICLONE, a.fileno())
        except OSError:
            return False
        return True


def test_revisions_share_sealed_files_and_never_change_the_serving_version(fast_dir: Path) -> None:
    store = EdgeStore(fast_dir / "vectors", search=SETTINGS, keep_versions=3)
    store.rebuild(SPEC, points(range(N), gen=1))
    folder = fast_dir / "vectors" / "big"
    first = files(folder / "v1")
    assert sealed(first), "the planted collection has no indexed segment: the test would prove nothing"

    # A revision that inserts, updates points of the indexed segments and deletes a few ...
    with store.revise("big") as draft:
        draft.upsert(points(range(N, N + 200), gen=2))
        draft.upsert(points(range(0, 300), gen=3))
        draft.delete(list(range(2000, 2100)))
    second = files(folder / "v2")
    assert files(folder / "v1") == first  # not one byte of the serving version moved
    shared = {k for k, (ino, _) in sealed(second).items() if first.get(k, (None,))[0] == ino}
    assert shared or reflinks(folder), "the revision copied the sealed files instead of sharing them"

    # ... and one on top of it that deletes a third of the points, past Qdrant's vacuum
    # threshold, so that the optimiser rebuilds segments while it seals the draft
    with store.revise("big") as draft:
        draft.upsert(points(range(300, 400), gen=4))
        draft.delete(list(range(1000, 2000)))
    assert store.current_version("big") == 3
    assert files(folder / "v1") == first and files(folder / "v2") == second
    third = files(folder / "v3")

    # the revisions hold exactly what was written
    assert store.count("big") == N + 200 - 1000 - 100
    got = {r.id: r.payload["gen"] for r in store.retrieve("big", [0, 299, 350, 999, 1500, 2050, N + 10])}
    assert got == {0: 3, 299: 3, 350: 4, 999: 1, N + 10: 2}
    updated = points(range(0, 300), gen=3)[5].vectors["v"]
    assert [h.id for h in store.search("big", updated, using="v", limit=1)] == [5]

    # dropping the oldest version leaves the newer ones whole
    store.dirs.remove("big", 1)
    assert files(folder / "v2") == second and files(folder / "v3") == third
    assert store.count("big") == N + 200 - 1000 - 100
    store.close()
