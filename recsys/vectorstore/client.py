"""qdrant-client backend: a Qdrant server or distributed cluster by URL, or qdrant-client's local mode.

Versions are physical collections ``<name>_v<N>``; readers address the alias ``<name>``.
A rebuild fills ``<name>_v<N+1>`` (a revision first copies the current version's points
into it, then applies its changes) and switches the alias with one
``update_collection_aliases`` call (delete and create in one request, which Qdrant
applies atomically), then drops versions older than the previous one. A failed rebuild
drops its new collection and leaves the alias where it was. The collection spec
(vector sizes, payload indexes) travels in the collection's metadata.

Remote calls use the configured timeout and are retried with exponential backoff on
connection errors, 429 and 5xx answers; a server that stays unreachable raises
:class:`~recsys.errors.VectorStoreError` naming the URL.

Local mode (``:memory:`` or a directory) is pure Python: exact search, payload
indexes accepted but ignored, about 20,000 points at most, one process per directory.
It stands in for a server in tests and small experiments.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from recsys.errors import LockedError, NotFoundError, VectorStoreError
from recsys.vectorstore.base import (
    Filter,
    Hit,
    Match,
    MatchAny,
    Point,
    RecommendStrategy,
    Record,
    VectorStore,
    as_vector,
)
from recsys.vectorstore.ids import PointKey, point_id
from recsys.vectorstore.spec import (
    CollectionInfo,
    CollectionSpec,
    Distance,
    FieldType,
    VectorInfo,
    check_compatible,
)

T = TypeVar("T")

_DISTANCE = {
    Distance.COSINE: qm.Distance.COSINE,
    Distance.DOT: qm.Distance.DOT,
    Distance.EUCLID: qm.Distance.EUCLID,
}
_FIELD = {
    FieldType.KEYWORD: qm.PayloadSchemaType.KEYWORD,
    FieldType.INTEGER: qm.PayloadSchemaType.INTEGER,
    FieldType.FLOAT: qm.PayloadSchemaType.FLOAT,
    FieldType.BOOL: qm.PayloadSchemaType.BOOL,
}
_VERSIONED = re.compile(r"^(?P<name>.+)_v(?P<version>\d+)$")


@dataclass(frozen=True)
class ClientOptions:
    """Connection and index settings of a remote Qdrant (ignored where local mode has no use for them)."""

    timeout_s: int = 10
    retries: int = 3
    backoff_s: float = 0.5
    hnsw_ef: int = 128
    m: int = 16
    ef_construct: int = 128
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    prefer_grpc: bool = False
    index_wait_s: int = 3600


def client_filter(flt: Filter | None, *, has_vector: str | None = None) -> qm.Filter | None:
    """Translate the contract's filter (and an optional has-vector condition) to qdrant-client's."""
    must: list[Any] = [_condition(c) for c in flt.must] if flt else []
    if has_vector is not None:
        must.append(qm.HasVectorCondition(has_vector=has_vector))
    should: list[Any] = [_condition(c) for c in flt.should] if flt else []
    must_not: list[Any] = [_condition(c) for c in flt.must_not] if flt else []
    if not (must or should or must_not):
        return None
    return qm.Filter(must=must or None, should=should or None, must_not=must_not or None)


def _condition(cond: Any) -> qm.FieldCondition:
    if isinstance(cond, Match):
        return qm.FieldCondition(key=cond.key, match=qm.MatchValue(value=cond.value))
    if isinstance(cond, MatchAny):
        return qm.FieldCondition(key=cond.key, match=qm.MatchAny(any=list[Any](cond.values)))
    return qm.FieldCondition(key=cond.key, range=qm.Range(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ResponseHandlingException):
        return True
    return isinstance(exc, UnexpectedResponse) and (exc.status_code == 429 or (exc.status_code or 0) >= 500)


class ClientStore(VectorStore):
    """A Qdrant server or cluster (``http(s)://`` URL), or local mode (``:memory:`` or a directory)."""

    def __init__(self, location: str, *, api_key: str | None = None, options: ClientOptions | None = None):
        self.location = location
        self.options = options or ClientOptions()
        self.remote = location.startswith(("http://", "https://"))
        self.keep_versions = 2
        # Local mode is plain Python objects: serialise calls from several threads (the UI).
        self._lock: Any = contextlib.nullcontext() if self.remote else threading.RLock()
        self._specs: dict[str, tuple[float, CollectionSpec]] = {}
        self.spec_ttl_s = 2.0  # another process may switch the alias to a version with other sizes
        try:
            if self.remote:
                self.client = QdrantClient(
                    url=location,
                    api_key=api_key,
                    timeout=self.options.timeout_s,
                    prefer_grpc=self.options.prefer_grpc,
                    check_compatibility=False,
                )
            elif location == ":memory:":
                self.client = QdrantClient(location=":memory:")
            else:
                self.client = QdrantClient(path=location)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise LockedError(
                    f"vector store {location} is open in another process (local mode allows one); "
                    "use a Qdrant server for shared access"
                ) from None
            raise VectorStoreError(f"cannot open vector store {location}: {exc}") from exc
        self._call(self.client.get_collections)  # fail now, naming the URL, if unreachable

    # ---- plumbing ------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        attempt = 0
        while True:
            try:
                with self._lock:
                    return fn(*args, **kwargs)
            except (ResponseHandlingException, UnexpectedResponse) as exc:
                if not _transient(exc) or attempt >= self.options.retries:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    what = (
                        "unreachable" if isinstance(exc, ResponseHandlingException) else "refused the request"
                    )
                    raise VectorStoreError(f"Qdrant at {self.location} {what}: {reason}") from None
                time.sleep(self.options.backoff_s * 2**attempt)
                attempt += 1

    def _search_params(self) -> qm.SearchParams | None:
        # Local mode searches exhaustively and warns about any search parameter.
        return qm.SearchParams(hnsw_ef=self.options.hnsw_ef) if self.remote else None

    def _physical(self, name: str, version: int) -> str:
        return f"{name}_v{version}"

    def _aliases(self) -> dict[str, str]:
        answer = self._call(self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in answer.aliases}

    def _physical_versions(self, name: str) -> list[int]:
        answer = self._call(self.client.get_collections)
        found = []
        for c in answer.collections:
            m = _VERSIONED.match(c.name)
            if m and m.group("name") == name:
                found.append(int(m.group("version")))
        return sorted(found)

    # ---- collections ---------------------------------------------------------------------------

    def has_collection(self, name: str) -> bool:
        return name in self._aliases()

    def collections(self) -> list[str]:
        return sorted(alias for alias, target in self._aliases().items() if _VERSIONED.match(target))

    def current_version(self, name: str) -> int | None:
        target = self._aliases().get(name)
        if target is None:
            return None
        m = _VERSIONED.match(target)
        if m is None:
            raise VectorStoreError(
                f"{self.location}: alias {name!r} points at {target!r}, not a recsys version"
            )
        return int(m.group("version"))

    def versions(self, name: str) -> list[int]:
        return self._physical_versions(name)

    def spec(self, name: str) -> CollectionSpec:
        cached = self._specs.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.spec_ttl_s:
            return cached[1]
        info = self._collection_info(name)
        metadata = info.config.metadata or {}
        if "recsys_spec" not in metadata:
            raise VectorStoreError(
                f"{self.location}: collection {name!r} was not created by recsys (no spec)"
            )
        spec = CollectionSpec.from_dict(metadata["recsys_spec"])
        self._specs[name] = (time.monotonic(), spec)
        return spec

    def _collection_info(self, name: str) -> qm.CollectionInfo:
        if not self.has_collection(name):
            raise NotFoundError(f"vector store {self.location} has no collection {name!r}")
        return self._call(self.client.get_collection, name)

    def ensure_collection(self, spec: CollectionSpec) -> None:
        if not self.has_collection(spec.name):
            self.rebuild(spec, [])
            return
        stored = self.spec(spec.name)
        check_compatible(self.location, stored, spec)
        missing = {k: v for k, v in spec.indexes.items() if k not in stored.indexes}
        if missing:
            version = self.current_version(spec.name) or 0
            physical = self._physical(spec.name, version)
            self._create_indexes(physical, missing)
            merged = CollectionSpec(stored.name, stored.vectors, {**stored.indexes, **missing})
            self._call(
                self.client.update_collection,
                physical,
                metadata={"recsys_spec": merged.as_dict(), "recsys_version": version},
            )
            self._specs.pop(spec.name, None)

    def drop_collection(self, name: str) -> None:
        if name in self._aliases():
            self._call(
                self.client.update_collection_aliases,
                change_aliases_operations=[
                    qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=name))
                ],
            )
        for version in self._physical_versions(name):
            self._call(self.client.delete_collection, self._physical(name, version))
        self._specs.pop(name, None)

    def describe(self, name: str) -> CollectionInfo:
        spec = self.spec(name)
        points = self.count(name)
        vectors = tuple(
            VectorInfo(v.name, v.size, v.distance, self.count(name, vector=v.name)) for v in spec.vectors
        )
        params = self._call(self.client.get_collection, name).config.params
        return CollectionInfo(
            name,
            self.current_version(name) or 0,
            tuple(self.versions(name)),
            points,
            vectors,
            tuple(spec.indexes),
            self.location,
            shards=params.shard_number,
            replicas=params.replication_factor,
        )

    def _create_indexes(self, physical: str, indexes: dict[str, FieldType]) -> None:
        with warnings.catch_warnings():
            # Local mode warns that it ignores payload indexes; a server uses them.
            warnings.simplefilter("ignore", UserWarning)
            for key, kind in indexes.items():
                self._call(self.client.create_payload_index, physical, key, _FIELD[kind], wait=True)

    # ---- points --------------------------------------------------------------------------------

    def _upsert_batch(self, name: str, points: list[Point]) -> None:
        self._call(self.client.upsert, name, points=[_client_point(p) for p in points], wait=True)

    def delete(self, name: str, ids: Sequence[PointKey]) -> None:
        self.spec(name)
        if ids:
            selector = qm.PointIdsList(points=[point_id(k) for k in ids])
            self._call(self.client.delete, name, points_selector=selector, wait=True)

    def retrieve(
        self, name: str, ids: Sequence[PointKey], *, with_vectors: bool | Sequence[str] = False
    ) -> list[Record]:
        self.spec(name)
        return self._retrieve_from(name, ids, with_vectors)

    def _retrieve_from(
        self, collection: str, ids: Sequence[PointKey], with_vectors: bool | Sequence[str]
    ) -> list[Record]:
        wanted = [point_id(k) for k in ids]
        vectors = with_vectors if isinstance(with_vectors, bool) else list(with_vectors)
        found = self._call(
            self.client.retrieve, collection, ids=wanted, with_payload=True, with_vectors=vectors
        )
        by_id = {_norm_id(r.id): r for r in found}
        return [
            Record(pid, dict(r.payload or {}), _vectors(r.vector))
            for pid in wanted
            if (r := by_id.get(pid)) is not None
        ]

    def count(self, name: str, *, filter: Filter | None = None, vector: str | None = None) -> int:
        spec = self.spec(name)
        if vector is not None:
            spec.vector(vector)
        answer = self._call(
            self.client.count, name, count_filter=client_filter(filter, has_vector=vector), exact=True
        )
        return int(answer.count)

    def scroll(
        self, name: str, *, with_vectors: bool | Sequence[str] = True, batch_size: int = 1000
    ) -> Iterator[Record]:
        self.spec(name)
        vectors = with_vectors if isinstance(with_vectors, bool) else list(with_vectors)
        offset: Any = None
        while True:
            records, offset = self._call(
                self.client.scroll,
                name,
                limit=batch_size,
                offset=offset,
                with_payload=True,
                with_vectors=vectors,
            )
            for r in records:
                yield Record(_norm_id(r.id), dict(r.payload or {}), _vectors(r.vector))
            if offset is None:
                return

    def first(self, name: str, limit: int, *, vector: str | None = None) -> list[Record]:
        spec = self.spec(name)
        if vector is not None:
            spec.vector(vector)
        records, _ = self._call(
            self.client.scroll,
            name,
            limit=limit,
            scroll_filter=client_filter(None, has_vector=vector),
            with_payload=True,
            with_vectors=False,
        )
        return [Record(_norm_id(r.id), dict(r.payload or {}), {}) for r in records]

    def _scroll_ids(self, name: str) -> list[PointKey]:
        ids: list[PointKey] = []
        offset: Any = None
        while True:
            records, offset = self._call(
                self.client.scroll, name, limit=20_000, offset=offset, with_payload=False, with_vectors=False
            )
            ids.extend(_norm_id(r.id) for r in records)
            if offset is None:
                return ids

    # ---- search --------------------------------------------------------------------------------

    def _nearest(
        self,
        name: str,
        vector: list[float],
        using: str,
        filter: Filter | None,
        limit: int,
        offset: int,
        score_threshold: float | None,
        with_vectors: bool,
        with_payload: bool,
    ) -> list[Hit]:
        answer = self._call(
            self.client.query_points,
            name,
            query=vector,
            using=using,
            query_filter=client_filter(filter),
            search_params=self._search_params(),
            limit=limit,
            offset=offset or None,
            score_threshold=score_threshold,
            with_payload=with_payload,
            with_vectors=[using] if with_vectors else False,
        )
        return [_hit(p) for p in answer.points]

    def _recommend(
        self,
        name: str,
        positive: list[list[float]],
        negative: list[list[float]],
        using: str,
        filter: Filter | None,
        limit: int,
        score_threshold: float | None,
        strategy: RecommendStrategy,
    ) -> list[Hit]:
        chosen = (
            qm.RecommendStrategy.SUM_SCORES if strategy == "sum_scores" else qm.RecommendStrategy.BEST_SCORE
        )
        query = qm.RecommendQuery(
            recommend=qm.RecommendInput(
                positive=list[Any](positive), negative=list[Any](negative) or None, strategy=chosen
            )
        )
        answer = self._call(
            self.client.query_points,
            name,
            query=query,
            using=using,
            query_filter=client_filter(filter),
            search_params=self._search_params(),
            limit=limit,
            score_threshold=score_threshold,
            with_payload=True,
        )
        return [_hit(p) for p in answer.points]

    # ---- versions ------------------------------------------------------------------------------

    def _create_version(self, spec: CollectionSpec) -> int:
        existing = self._physical_versions(spec.name)
        current = self.current_version(spec.name) or 0
        version = max([current, *existing]) + 1
        physical = self._physical(spec.name, version)
        opts = self.options
        self._call(
            self.client.create_collection,
            physical,
            vectors_config={
                v.name: qm.VectorParams(size=v.size, distance=_DISTANCE[v.distance]) for v in spec.vectors
            },
            hnsw_config=qm.HnswConfigDiff(m=opts.m, ef_construct=opts.ef_construct),
            shard_number=opts.shard_number,
            replication_factor=opts.replication_factor,
            write_consistency_factor=opts.write_consistency_factor,
            metadata={"recsys_spec": spec.as_dict(), "recsys_version": version},
        )
        self._create_indexes(physical, dict(spec.indexes))
        return version

    def _write_version(self, name: str, version: int, points: list[Point]) -> None:
        physical = self._physical(name, version)
        self._call(self.client.upsert, physical, points=[_client_point(p) for p in points], wait=True)

    def _delete_in_version(self, name: str, version: int, ids: list[PointKey]) -> None:
        selector = qm.PointIdsList(points=[point_id(k) for k in ids])
        self._call(self.client.delete, self._physical(name, version), points_selector=selector, wait=True)

    def _retrieve_in_version(
        self, name: str, version: int, ids: list[PointKey], with_vectors: bool | Sequence[str]
    ) -> list[Record]:
        return self._retrieve_from(self._physical(name, version), ids, with_vectors)

    def _ids_in_version(self, name: str, version: int) -> list[PointKey]:
        return self._scroll_ids(self._physical(name, version))

    def _seal_version(self, name: str, version: int) -> None:
        """Wait (up to ``index_wait_s``) for the server to finish indexing before readers switch.

        Upserts were sent with ``wait=True``, so every point is there already; waiting for
        the optimizers spares readers the slow full scans of a collection still indexing.
        Local mode has no index to wait for.
        """
        if not self.remote:
            return
        physical = self._physical(name, version)
        deadline = time.monotonic() + self.options.index_wait_s
        while time.monotonic() < deadline:
            info = self._call(self.client.get_collection, physical)
            if info.status == qm.CollectionStatus.GREEN:
                return
            if info.status == qm.CollectionStatus.RED:
                raise VectorStoreError(f"Qdrant at {self.location}: indexing {physical!r} failed")
            time.sleep(1.0)
        raise VectorStoreError(
            f"Qdrant at {self.location}: {physical!r} still indexing after {self.options.index_wait_s} s"
        )

    def _discard_version(self, name: str, version: int) -> None:
        self._call(self.client.delete_collection, self._physical(name, version))

    def _publish_version(self, name: str, version: int) -> None:
        actions: list[Any] = []
        if name in self._aliases():
            actions.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=name)))
        actions.append(
            qm.CreateAliasOperation(
                create_alias=qm.CreateAlias(collection_name=self._physical(name, version), alias_name=name)
            )
        )
        self._call(self.client.update_collection_aliases, change_aliases_operations=actions)
        self._specs.pop(name, None)
        for old in self._physical_versions(name):
            if old <= version - self.keep_versions:
                self._call(self.client.delete_collection, self._physical(name, old))

    def close(self) -> None:
        self.client.close()


def _norm_id(value: Any) -> int | str:
    return value if isinstance(value, int) else str(value)


def _vectors(value: Any) -> dict[str, list[float]]:
    return {k: list(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _client_point(point: Point) -> qm.PointStruct:
    vectors: dict[str, Any] = {name: as_vector(value) for name, value in point.vectors.items()}
    return qm.PointStruct(id=point_id(point.id), vector=vectors, payload=point.payload)


def _hit(scored: Any) -> Hit:
    return Hit(_norm_id(scored.id), dict(scored.payload or {}), _vectors(scored.vector), float(scored.score))
