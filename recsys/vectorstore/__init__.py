"""Vector storage on Qdrant: one contract (``base``), an embedded and a server backend."""

from __future__ import annotations

from pathlib import Path

from recsys.config import Settings
from recsys.vectorstore.base import (
    Filter,
    Hit,
    Match,
    MatchAny,
    Point,
    Range,
    Record,
    VectorStore,
)
from recsys.vectorstore.spec import CollectionInfo, CollectionSpec, Distance, FieldType, VectorSpec

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
    "open_store",
]


def open_store(settings: Settings) -> VectorStore:
    """The vector store ``settings.vector_target`` names.

    * ``http://…`` or ``https://…`` — a Qdrant server or cluster through qdrant-client,
      with ``qdrant_api_key``, ``qdrant_timeout_s`` and ``qdrant_retries``, and new collections
      made with ``qdrant_shards``, ``qdrant_replicas`` and ``qdrant_write_consistency``; an unreachable
      server raises ``VectorStoreError`` naming the URL;
    * ``:memory:`` — qdrant-client's in-memory local mode (nothing persists; for tests and
      trials; exact search, so keep it under about 20,000 points);
    * anything else is a directory — Qdrant Edge, the embedded default
      (``<data dir>/vectors`` unless ``RECSYS_VECTOR_STORE`` says otherwise).
    """
    target = settings.vector_target
    if target.startswith(("http://", "https://")) or target == ":memory:":
        # deferred: qdrant_client is only needed for a server or local mode
        from recsys.vectorstore.client import ClientOptions, ClientStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        options = ClientOptions(
            timeout_s=settings.qdrant_timeout_s,
            retries=settings.qdrant_retries,
            shard_number=settings.qdrant_shards,
            replication_factor=settings.qdrant_replicas,
            write_consistency_factor=settings.qdrant_write_consistency,
        )
        return ClientStore(target, api_key=key, options=options)
    # deferred: qdrant_edge loads its native engine; a server-backed process never needs it
    from recsys.vectorstore.edge import EdgeStore

    return EdgeStore(Path(target).expanduser())
