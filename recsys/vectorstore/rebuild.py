"""Rebuild a collection as a new version, carrying over the vectors the current version holds.

The nightly job (and ``recsys index rebuild``) hands :func:`rebuild_collection` every
point the new version should contain, with fresh payloads and whatever vectors a job
just computed. Vectors the current version already has for the same ids are carried
over unless the point brings its own, so an embedder can add one kind of vector
without recomputing the others, and readers switch to the result atomically.

A carried vector keeps its model stamp (the payload field ``<vector>_model``, see
:func:`recsys.vectorstore.collections.model_field`), which fresh catalog payloads do
not have; a stamp whose vector is not in the new point is removed, so a stamp is
only ever found beside the vector it describes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.vectorstore.base import DEFAULT_BATCH, Point, VectorStore
from recsys.vectorstore.collections import SPECS, model_field
from recsys.vectorstore.ids import point_id
from recsys.vectorstore.spec import CollectionSpec


@dataclass
class RebuildReport:
    """What a rebuild wrote: the new version, its points, and the vectors carried over per name."""

    name: str
    version: int = 0
    points: int = 0
    carried: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    dropped_points: int = 0
    dropped_vectors: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "collection": self.name,
            "version": self.version,
            "points": self.points,
            "vectors_written": dict(sorted(self.written.items())),
            "vectors_carried_over": dict(sorted(self.carried.items())),
            "points_dropped": self.dropped_points,
            "vectors_dropped_for_size": self.dropped_vectors,
        }


def target_spec(store: VectorStore, name: str, spec: CollectionSpec | None = None) -> CollectionSpec:
    """The spec of the next version: ``spec`` if given, else the current version's sizes plus
    any vector or index the platform's default spec for ``name`` has gained since."""
    if spec is not None:
        return spec
    default = SPECS[name]() if name in SPECS else None
    if not store.has_collection(name):
        if default is None:
            raise ValueError(f"collection {name!r} does not exist and has no default spec; pass one")
        return default
    current = store.spec(name)
    if default is None:
        return current
    have = {v.name for v in current.vectors}
    vectors = (*current.vectors, *(v for v in default.vectors if v.name not in have))
    return CollectionSpec(name, vectors, {**default.indexes, **current.indexes})


def rebuild_collection(
    store: VectorStore,
    name: str,
    points: Iterable[Point],
    *,
    spec: CollectionSpec | None = None,
    carry_over: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> RebuildReport:
    """Write ``points`` as a new version of ``name`` and publish it; see the module docstring.

    Points of the current version absent from ``points`` are not carried into the new
    version. A carried vector whose size no longer matches the new spec is dropped (the
    model that made it changed). On any failure the current version keeps serving.
    """
    new_spec = target_spec(store, name, spec)
    sizes = new_spec.sizes
    report = RebuildReport(name)
    stamps = {model_field(key): key for key in sizes}
    old: dict[int | str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}
    if carry_over and store.has_collection(name):
        for record in store.scroll(name, with_vectors=True):
            if record.vectors:
                old[record.id] = (
                    {k: np.asarray(v, dtype=np.float32) for k, v in record.vectors.items()},
                    {k: v for k, v in record.payload.items() if stamps.get(k) in record.vectors},
                )

    def merged() -> Iterator[Point]:
        for point in points:
            kept, kept_stamps = old.pop(point_id(point.id), ({}, {}))
            vectors = dict(point.vectors)
            payload = dict(point.payload)
            for key in vectors:
                report.written[key] = report.written.get(key, 0) + 1
            for key, value in kept.items():
                if key in vectors:
                    continue
                if sizes.get(key) != len(value):
                    report.dropped_vectors += 1
                    continue
                vectors[key] = value
                report.carried[key] = report.carried.get(key, 0) + 1
                stamp = model_field(key)
                if stamp in kept_stamps:
                    payload.setdefault(stamp, kept_stamps[stamp])
            for stamp, key in stamps.items():
                if key not in vectors:
                    payload.pop(stamp, None)
            report.points += 1
            yield Point(point.id, vectors, payload)

    report.version = store.rebuild(new_spec, merged(), batch_size=batch_size)
    report.dropped_points = len(old)
    return report
