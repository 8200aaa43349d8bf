"""What a collection is: its named vectors, their distances, its indexed payload fields.

:class:`CollectionSpec` is stored with every version (an Edge manifest, a server
collection's metadata) and compared by ``ensure_collection``; :class:`CollectionInfo`
is what ``describe`` reports. These types import nothing else of the store, so the
contract (``base``), the backends and the helpers (``mmr``) all build on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from recsys.errors import DimensionMismatchError, NotFoundError, VectorStoreError


class Distance(StrEnum):
    """How two vectors are compared; larger scores are always better."""

    COSINE = "cosine"
    DOT = "dot"
    EUCLID = "euclid"


class FieldType(StrEnum):
    """The type of an indexed payload field (a list field is indexed by its element type)."""

    KEYWORD = "keyword"
    INTEGER = "integer"
    FLOAT = "float"
    BOOL = "bool"


@dataclass(frozen=True)
class VectorSpec:
    """One named dense vector of a collection."""

    name: str
    size: int
    distance: Distance = Distance.COSINE

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"vector {self.name!r}: size must be positive, got {self.size}")


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection holds: its named vectors and its indexed payload fields."""

    name: str
    vectors: tuple[VectorSpec, ...]
    indexes: Mapping[str, FieldType] = field(default_factory=dict)

    def vector(self, name: str) -> VectorSpec:
        for spec in self.vectors:
            if spec.name == name:
                return spec
        raise NotFoundError(f"collection {self.name!r} has no vector {name!r}")

    @property
    def sizes(self) -> dict[str, int]:
        return {spec.name: spec.size for spec in self.vectors}

    def with_vector(self, name: str, size: int, distance: Distance = Distance.COSINE) -> CollectionSpec:
        """This spec with one named vector added or resized (for a model whose size changed)."""
        kept = tuple(v for v in self.vectors if v.name != name)
        return CollectionSpec(self.name, (*kept, VectorSpec(name, size, distance)), dict(self.indexes))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vectors": {v.name: {"size": v.size, "distance": str(v.distance)} for v in self.vectors},
            "indexes": {key: str(kind) for key, kind in self.indexes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectionSpec:
        vectors = tuple(
            VectorSpec(name, int(v["size"]), Distance(v["distance"])) for name, v in data["vectors"].items()
        )
        indexes = {key: FieldType(kind) for key, kind in data.get("indexes", {}).items()}
        return cls(str(data["name"]), vectors, indexes)


@dataclass(frozen=True)
class VectorInfo:
    name: str
    size: int
    distance: Distance
    count: int


@dataclass(frozen=True)
class CollectionInfo:
    """What ``describe`` reports: the current version and counts per named vector."""

    name: str
    version: int
    versions: tuple[int, ...]
    points: int
    vectors: tuple[VectorInfo, ...]
    indexes: tuple[str, ...]
    location: str
    counted: str = "live"
    """``live``, or ``at publish`` when the counts come from the version's manifest."""
    shards: int | None = None  # on a Qdrant server: the collection's shards and copies of each
    replicas: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "versions": list(self.versions),
            "points": self.points,
            "vectors": {
                v.name: {"size": v.size, "distance": str(v.distance), "count": v.count} for v in self.vectors
            },
            "indexes": list(self.indexes),
            "location": self.location,
            "counted": self.counted,
            "shards": self.shards,
            "replicas": self.replicas,
        }


def check_compatible(location: str, stored: CollectionSpec, wanted: CollectionSpec) -> None:
    """Raise when ``wanted`` needs a vector the stored collection lacks or holds at another size."""
    have = {v.name: v for v in stored.vectors}
    for vector in wanted.vectors:
        old = have.get(vector.name)
        if old is None:
            raise VectorStoreError(
                f"{location}: collection {stored.name!r} has no vector {vector.name!r}; "
                "rebuild it with the new spec to add one"
            )
        if (old.size, old.distance) != (vector.size, vector.distance):
            raise DimensionMismatchError(
                f"{location}: collection {stored.name!r}, vector {vector.name!r} is stored as "
                f"{old.size}-d {old.distance}, asked for {vector.size}-d {vector.distance}"
            )
