"""Point ids, spec serialisation and MMR, without a store."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.vectorstore import CollectionSpec, Distance
from recsys.vectorstore.collections import playlists_spec, tracks_spec
from recsys.vectorstore.ids import POINT_NAMESPACE, point_id
from recsys.vectorstore.mmr import mmr_select


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_integer_ids_are_used_unchanged(key: int) -> None:
    assert point_id(key) == key


@given(st.text(min_size=1))
def test_string_ids_are_stable_uuids(key: str) -> None:
    pid = point_id(key)
    assert isinstance(pid, str) and uuid.UUID(pid)
    assert pid == point_id(key)
    if not _is_uuid(key):
        assert pid == str(uuid.uuid5(POINT_NAMESPACE, key))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("bad", [-1, 2**64, True, 1.5])
def test_invalid_ids_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        point_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", [tracks_spec(), playlists_spec({"sif": 300})])
def test_spec_round_trips(spec: CollectionSpec) -> None:
    assert CollectionSpec.from_dict(spec.as_dict()) == spec


def test_mmr_prefers_relevance_then_novelty() -> None:
    query = np.array([1.0, 0.0, 0.0])
    candidates = np.array(
        [
            [1.0, 0.01, 0.0],
            [1.0, 0.02, 0.0],
            [0.8, 0.0, 0.6],
            [0.0, 1.0, 0.0],
        ]  # two near-twins, one aside, one far
    )
    assert mmr_select(query, candidates, 3, diversity=0.0) == [0, 1, 2]
    assert mmr_select(query, candidates, 2, diversity=0.5) == [0, 2]
    assert mmr_select(query, candidates, 2, diversity=1.0, distance=Distance.DOT)[0] == 0
    with pytest.raises(ValueError, match="diversity"):
        mmr_select(query, candidates, 2, diversity=1.5)
