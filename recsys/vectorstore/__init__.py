"""Vector storage on Qdrant: one contract (``base``), an embedded and a server backend."""

from __future__ import annotations

from recsys.vectorstore.base import (
    CollectionInfo,
    CollectionSpec,
    Distance,
    FieldType,
    Filter,
    Hit,
    Match,
    MatchAny,
    Point,
    Range,
    Record,
    VectorSpec,
    VectorStore,
)

__all__ = [
    "CollectionInfo",
    "CollectionSpec",
    "Distance",
    "FieldType",
    "Filter",
    "Hit",
    "Match",
    "MatchAny",
    "Point",
    "Range",
    "Record",
    "VectorSpec",
    "VectorStore",
]
