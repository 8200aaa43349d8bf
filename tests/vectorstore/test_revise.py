"""Revisions on every backend: a draft copies the serving version, its changes publish together or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import DimensionMismatchError, LockedError
from recsys.vectorstore import FieldType, Point, VectorStore
from recsys.vectorstore.collections import TRACKS, tracks_spec
from recsys.vectorstore.edge import EdgeStore
from tests.vectorstore.conftest import SPEC, planted_points


def test_a_revision_publishes_its_upserts_and_deletes_together(filled: VectorStore) -> None:
    before = filled.current_version("items") or 0
    with filled.revise("items") as draft:
        assert draft.version == before + 1
        assert draft.upsert([Point(100, {"a": np.ones(8)}, {"artist": "eve", "year": 2001})]) == 1
        draft.delete([0, 1, 2])
        # nothing is visible before the block ends
        assert filled.count("items") == 60 and filled.current_version("items") == before
    assert filled.current_version("items") == before + 1
    assert filled.count("items") == 58
    assert [r.id for r in filled.retrieve("items", [0, 5, 100])] == [5, 100]
    # the copy kept every other point whole: vectors, payload, and the indexes' filters
    kept = filled.retrieve("items", [7], with_vectors=True)[0]
    original = planted_points()[7]
    assert kept.payload == original.payload
    # cosine vectors are stored normalised
    unit = np.asarray(original.vectors["a"]) / np.linalg.norm(original.vectors["a"])
    assert np.allclose(kept.vectors["a"], unit, atol=1e-5)
    assert set(filled.describe("items").indexes) == {"artist", "genres", "year"}


def test_a_draft_reads_the_serving_points_and_its_own_writes(filled: VectorStore) -> None:
    before, versions = filled.current_version("items"), filled.versions("items")
    with filled.revise("items") as draft:
        draft.upsert([Point(100, {"a": np.ones(8)}, {"artist": "eve"})])
        draft.delete([3])
        assert draft.point_ids() == [i for i in range(60) if i != 3] + [100]
        got = draft.retrieve([100, 3, 7], with_vectors=["a"])
        assert [r.id for r in got] == [100, 7]
        assert got[0].payload["artist"] == "eve" and got[1].payload == planted_points()[7].payload
        assert set(got[1].vectors) == {"a"}
        assert draft.retrieve([]) == []
        # the serving version does not see the draft
        assert filled.count("items") == 60 and filled.retrieve("items", [100]) == []
        draft.abandon()
    # an abandoned draft publishes nothing
    assert filled.current_version("items") == before and filled.versions("items") == versions
    assert filled.count("items") == 60
    with filled.revise("items") as draft:  # and the collection takes the next draft at once
        draft.delete([0])
    assert filled.count("items") == 59


def test_a_revision_that_raises_leaves_the_serving_version_unchanged(filled: VectorStore) -> None:
    before, versions = filled.current_version("items"), filled.versions("items")
    with pytest.raises(RuntimeError, match="job died"), filled.revise("items") as draft:
        draft.upsert([Point(100, {"a": np.ones(8)}, {})])
        draft.delete(list(range(30)))
        raise RuntimeError("job died")
    assert filled.current_version("items") == before
    assert filled.versions("items") == versions
    assert filled.count("items") == 60 and not filled.retrieve("items", [100])
    with filled.revise("items") as draft:  # and the next one works
        draft.delete([59])
    assert filled.count("items") == 59


def test_a_revision_checks_dimensions_and_keeps_serving(filled: VectorStore) -> None:
    before = filled.current_version("items")
    with pytest.raises(DimensionMismatchError), filled.revise("items") as draft:
        draft.upsert([Point(1, {"a": np.ones(3)})])
    assert filled.current_version("items") == before and filled.count("items") == 60


def test_a_revision_may_add_indexes(filled: VectorStore) -> None:
    wider = type(SPEC)(SPEC.name, SPEC.vectors, {**SPEC.indexes, "title": FieldType.KEYWORD})
    with filled.revise("items", spec=wider) as draft:
        draft.delete([0])
    assert "title" in filled.spec("items").indexes
    assert filled.count("items") == 59


def test_a_revision_of_a_missing_collection_starts_from_the_default_spec(store: VectorStore) -> None:
    with store.revise(TRACKS) as draft:
        draft.upsert([Point(7, {"cf": np.ones(64)}, {"title": "seven"})])
    assert store.spec(TRACKS) == tracks_spec()
    assert store.retrieve(TRACKS, [7])[0].payload == {"title": "seven"}


def test_one_embedded_writer_at_a_time(fast_dir: Path) -> None:
    first, second = EdgeStore(fast_dir / "v"), EdgeStore(fast_dir / "v")
    first.rebuild(SPEC, planted_points())
    with first.revise("items") as draft:
        draft.delete([0])
        with pytest.raises(LockedError, match="already running"), second.revise("items"):
            pass
    assert second.count("items") == 59
    first.close()
    second.close()
