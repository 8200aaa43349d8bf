"""Qdrant Edge backend: the Qdrant engine in-process, stored under the data dir (the default).

The directories (one per version, a manifest each, the ``CURRENT`` pointer) are laid
out by :mod:`recsys.vectorstore.edge_versions`; conversions to Qdrant Edge's types
live in :mod:`recsys.vectorstore.edge_convert`.

Published versions never change. A rebuild creates ``v<N+1>`` beside the current
version; a revision (:meth:`~recsys.vectorstore.base.VectorStore.revise`, and so
``upsert``, ``delete`` and an ``ensure_collection`` that adds indexes) creates it as a
copy of the current one (a reflink where the file system has them) and applies its
changes. Either way the new version is filled, indexed and closed, then published by
replacing ``CURRENT`` atomically. One writer per collection at a time (``flock`` on
``.rebuild.lock``, released by the system if the writer dies); a draft left by a dead
writer is removed by the next one. A failed write removes its directory; ``CURRENT`` is
untouched and the old version keeps serving.

Readers (any number of processes: the UI, command-line queries, the writer itself) read
a private hard-linked view of the published version (:mod:`recsys.vectorstore.edge_readers`)
and check ``CURRENT`` on every call (one ``stat``): when it changed, the next call opens
a view of the new version and closes the old one, so every answer comes wholly from one
version and no reader needs a restart. A version older than the ``keep_versions``
newest is deleted once no reader holds it: by the writer after publishing, or by the
reader that lets go of it last.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from recsys.errors import NotFoundError, VectorStoreError
from recsys.vectorstore.base import (
    DEFAULT_BATCH,
    Filter,
    Hit,
    Point,
    RecommendStrategy,
    Record,
    VectorStore,
)
from recsys.vectorstore.edge_convert import (
    FIELD_INDEXES,
    EdgeSearchSettings,
    edge_filter,
    edge_point,
    hit,
    record_id,
    retrieve_records,
    scroll_ids,
    scroll_shard,
    vector_counts,
)
from recsys.vectorstore.edge_readers import View, collect, load_shard, open_view
from recsys.vectorstore.edge_versions import VersionDirs, clone_tree, read_pointer, unlock
from recsys.vectorstore.ids import PointKey, point_id
from recsys.vectorstore.spec import CollectionInfo, CollectionSpec, VectorInfo, check_compatible

__all__ = ["EdgeSearchSettings", "EdgeStore"]


@dataclass
class _Opened:
    view: View
    stamp: tuple[int, int, int]


class EdgeStore(VectorStore):
    """Qdrant Edge shards under ``root``, one directory per collection version."""

    def __init__(self, root: str | Path, *, search: EdgeSearchSettings | None = None, keep_versions: int = 2):
        self.root = Path(root)
        self.location = str(self.root)
        self.search_settings = search or EdgeSearchSettings()
        self._search_params = self.search_settings.search_params()  # built once, shared by every query
        self.keep_versions = max(keep_versions, 1)
        self._open: dict[str, _Opened] = {}
        self._pointers: dict[str, str] = {}
        self._building: dict[tuple[str, int], qe.EdgeShard] = {}
        self._rebuild_locks: dict[str, int] = {}
        self._specs: dict[tuple[str, int], CollectionSpec] = {}
        self._lock = threading.RLock()
        self.dirs = VersionDirs(self.root)
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreError(f"cannot create the vector store directory {self.root}: {exc}") from exc

    # ---- opening shards ------------------------------------------------------------------------

    def _shard(self, name: str) -> qe.EdgeShard:
        """The shard of this process's view of the current version, switched when ``CURRENT`` changed.

        Every query comes through here, so the pointer's path is kept as a string: the
        check costs one ``stat``, not the building of a path as well."""
        pointer = self._pointers.get(name)
        if pointer is None:
            pointer = self._pointers[name] = str(self.dirs.pointer(name))
        try:
            st = os.stat(pointer)
        except FileNotFoundError:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        opened = self._open.get(name)
        if opened is not None and opened.stamp == stamp:
            return opened.view.shard
        if opened is not None and opened.view.version == read_pointer(Path(pointer)):
            opened.stamp = stamp
            return opened.view.shard
        view = open_view(self.dirs, name, self._token)
        self._open[name] = _Opened(view, stamp)
        if opened is not None:
            opened.view.close()
            collect(self.dirs, name, self.keep_versions)
        return view.shard

    def _release(self, name: str) -> None:
        opened = self._open.pop(name, None)
        if opened is not None:
            opened.view.close()
            if opened.view.version != self.dirs.current(name):
                collect(self.dirs, name, self.keep_versions)

    # ---- collections ---------------------------------------------------------------------------

    def has_collection(self, name: str) -> bool:
        return self.dirs.has(name)

    def collections(self) -> list[str]:
        return self.dirs.names()

    def current_version(self, name: str) -> int | None:
        return self.dirs.current(name)

    def versions(self, name: str) -> list[int]:
        return self.dirs.versions(name)

    def spec(self, name: str) -> CollectionSpec:
        version = self.current_version(name)
        if version is None:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}")
        return self._version_spec(name, version)

    def _serving_spec(self, name: str) -> CollectionSpec:
        """The spec of the version this process's view shows: one ``stat`` of ``CURRENT``
        (which also moves the view on when it changed), no file read."""
        with self._lock:
            self._shard(name)
            return self._version_spec(name, self._open[name].view.version)

    def _version_spec(self, name: str, version: int) -> CollectionSpec:
        key = (name, version)
        if key not in self._specs:
            self._specs[key] = CollectionSpec.from_dict(self.dirs.read_manifest(name, version)["spec"])
        return self._specs[key]

    def ensure_collection(self, spec: CollectionSpec) -> None:
        with self._lock:
            if not self.has_collection(spec.name):
                self.rebuild(spec, [])
                return
            stored = self.spec(spec.name)
            check_compatible(self.location, stored, spec)
            missing = {k: v for k, v in spec.indexes.items() if k not in stored.indexes}
            if missing:
                with self.revise(spec.name, spec=spec):
                    pass  # the copy gains the indexes as it is made

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._release(name)
            if self.dirs.folder(name).is_dir():
                shutil.rmtree(self.dirs.folder(name))

    def describe(self, name: str) -> CollectionInfo:
        with self._lock:
            shard = self._shard(name)
            version = self._open[name].view.version  # counted in the version the view shows
            spec = self._version_spec(name, version)
            points = shard.count(qe.CountRequest(exact=True))
            counts = vector_counts(shard, spec)
            indexes = tuple(sorted(shard.info().payload_schema))
            vectors = tuple(
                VectorInfo(v.name, v.size, v.distance, int(counts.get(v.name, 0))) for v in spec.vectors
            )
            return CollectionInfo(
                name,
                version,
                tuple(self.versions(name)),
                points,
                vectors,
                indexes,
                self.location,
            )

    # ---- points --------------------------------------------------------------------------------

    def upsert(self, name: str, points: Iterable[Point], *, batch_size: int = DEFAULT_BATCH) -> int:
        """Write ``points`` as one new version: a revision of the current one, published when all are in."""
        self.spec(name)
        pending = iter(points)
        first = next(pending, None)
        if first is None:
            return 0
        with self.revise(name) as draft:
            return draft.upsert(itertools.chain([first], pending), batch_size=batch_size)

    def _upsert_batch(self, name: str, points: list[Point]) -> None:
        self.upsert(name, points)

    def delete(self, name: str, ids: Sequence[PointKey]) -> None:
        """Delete points as one new version (ids that do not exist are ignored)."""
        self.spec(name)
        if ids:
            with self.revise(name) as draft:
                draft.delete(ids)

    def retrieve(
        self, name: str, ids: Sequence[PointKey], *, with_vectors: bool | Sequence[str] = False
    ) -> list[Record]:
        with self._lock:
            return retrieve_records(self._shard(name), ids, with_vectors)

    def count(self, name: str, *, filter: Filter | None = None, vector: str | None = None) -> int:
        with self._lock:
            if vector is not None:
                self.spec(name).vector(vector)
            return self._shard(name).count(
                qe.CountRequest(filter=edge_filter(filter, has_vector=vector), exact=True)
            )

    def scroll(
        self, name: str, *, with_vectors: bool | Sequence[str] = True, batch_size: int = 1000
    ) -> Iterator[Record]:
        """Every point of the current version, read through a view of its own, so that a switch
        to a newer version by other calls of this store does not cut the scroll short."""
        view = open_view(self.dirs, name, f"{self._token}-scroll-{uuid.uuid4().hex[:8]}")
        try:
            yield from scroll_shard(view.shard, self._lock, with_vectors, batch_size)
        finally:
            view.close()

    def first(self, name: str, limit: int, *, vector: str | None = None) -> list[Record]:
        with self._lock:
            if vector is not None:
                self.spec(name).vector(vector)
            records, _ = self._shard(name).scroll(
                qe.ScrollRequest(
                    limit=limit,
                    filter=edge_filter(None, has_vector=vector),
                    with_payload=True,
                    with_vector=False,
                )
            )
        return [Record(record_id(r.id), dict(r.payload or {}), {}) for r in records]

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
        request = qe.QueryRequest(
            query=qe.Query.Nearest(vector, using=using),
            filter=edge_filter(filter),
            limit=limit,
            offset=offset,
            score_threshold=score_threshold,
            params=self._search_params,
            with_payload=with_payload,
            with_vector=[using] if with_vectors else False,
        )
        with self._lock:
            return [hit(p) for p in self._shard(name).query(request)]

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
        rq = qe.RecommendQuery(list[Any](positive), list[Any](negative))
        query = (
            qe.Query.RecommendSumScores(rq, using=using)
            if strategy == "sum_scores"
            else qe.Query.RecommendBestScore(rq, using=using)
        )
        request = qe.QueryRequest(
            query=query,
            filter=edge_filter(filter),
            limit=limit,
            score_threshold=score_threshold,
            params=self._search_params,
            with_payload=True,
            with_vector=False,
        )
        with self._lock:
            return [hit(p) for p in self._shard(name).query(request)]

    # ---- versions ------------------------------------------------------------------------------

    def _create_version(self, spec: CollectionSpec) -> int:
        return self._new_version(spec, copy=False)

    def _create_draft(self, spec: CollectionSpec) -> int:
        return self._new_version(spec, copy=True)

    def _new_version(self, spec: CollectionSpec, *, copy: bool) -> int:
        """Start the next version, empty or as a copy of the current one, under the writer's lock."""
        with self._lock:
            self.dirs.folder(spec.name).mkdir(parents=True, exist_ok=True)
            self._rebuild_locks[spec.name] = self.dirs.take_rebuild_lock(spec.name)
            try:
                current = self.current_version(spec.name) or 0
                self.dirs.remove_abandoned(spec.name, current)
                version = max([current, *self.dirs.version_dirs(spec.name)]) + 1
                shard = self._start_shard(spec, current if copy else 0, version)
            except BaseException:
                self._drop_rebuild_lock(spec.name)
                raise
            self._building[(spec.name, version)] = shard
            self._specs[(spec.name, version)] = spec
            return version

    def _start_shard(self, spec: CollectionSpec, source: int, version: int) -> qe.EdgeShard:
        """The shard of a new version: a copy of version ``source`` (0: empty), with ``spec``'s indexes."""
        path = self.dirs.version_dir(spec.name, version)
        try:
            if source:
                have = self.spec(spec.name).indexes
                clone_tree(self.dirs.version_dir(spec.name, source), path)
                shard = load_shard(path)
            else:
                have = {}
                shard = qe.EdgeShard.create(str(path), self.search_settings.shard_config(spec))
            for key, kind in spec.indexes.items():
                if key not in have:
                    shard.update(qe.UpdateOperation.create_field_index(key, FIELD_INDEXES[kind]))
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return shard

    def _write_version(self, name: str, version: int, points: list[Point]) -> None:
        self._building[(name, version)].update(
            qe.UpdateOperation.upsert_points([edge_point(p) for p in points])
        )

    def _delete_in_version(self, name: str, version: int, ids: list[PointKey]) -> None:
        self._building[(name, version)].update(qe.UpdateOperation.delete_points([point_id(k) for k in ids]))

    def _retrieve_in_version(
        self, name: str, version: int, ids: list[PointKey], with_vectors: bool | Sequence[str]
    ) -> list[Record]:
        with self._lock:
            return retrieve_records(self._building[(name, version)], ids, with_vectors)

    def _ids_in_version(self, name: str, version: int) -> list[PointKey]:
        return scroll_ids(self._building[(name, version)], self._lock)

    def _seal_version(self, name: str, version: int) -> None:
        shard = self._building[(name, version)]
        shard.optimize()
        shard.flush()
        spec = self._specs[(name, version)]
        manifest = {
            "spec": spec.as_dict(),
            "points": shard.count(qe.CountRequest(exact=True)),
            "vectors": vector_counts(shard, spec),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        shard.close()
        del self._building[(name, version)]
        self.dirs.write_manifest(name, version, manifest)

    def _discard_version(self, name: str, version: int) -> None:
        shard = self._building.pop((name, version), None)
        if shard is not None:
            shard.close()
        self._specs.pop((name, version), None)
        self.dirs.remove(name, version)
        self._drop_rebuild_lock(name)

    def _publish_version(self, name: str, version: int) -> None:
        with self._lock:
            try:
                self.dirs.publish(name, version)
                collect(self.dirs, name, self.keep_versions)
            finally:
                self._drop_rebuild_lock(name)

    def _drop_rebuild_lock(self, name: str) -> None:
        fd = self._rebuild_locks.pop(name, None)
        if fd is not None:
            unlock(fd)

    def release(self) -> int:
        """Close this process's views, so that the versions they show may be deleted once
        newer ones serve; the next call opens the current version again. Returns how many were open."""
        with self._lock:
            names = list(self._open)
            for name in names:
                self._release(name)
            return len(names)

    def close(self) -> None:
        with self._lock:
            for name in list(self._open):
                self._release(name)
            for key in list(self._building):
                self._discard_version(*key)
