"""Qdrant Edge backend: the Qdrant engine in-process, stored under the data dir (the default).

The directories (one per version, a manifest each, the ``CURRENT`` pointer) are laid
out by :mod:`recsys.vectorstore.edge_versions`; conversions to Qdrant Edge's types
live in :mod:`recsys.vectorstore.edge_convert`.

A rebuild creates ``v<N+1>`` beside the current version, fills and indexes it, closes
it, and publishes it by writing ``CURRENT`` to a temporary file and renaming it into
place (``os.replace``, atomic). Every read first checks ``CURRENT`` (one ``stat``) and,
when it changed, closes its shard and opens the new version, so readers in other
processes (the UI) switch between two queries, never inside one. A failed rebuild
removes its directory; ``CURRENT`` is untouched and the old version keeps serving.
After publishing, versions older than the previous one are deleted unless another
process still has them open (they go at the next publish).

Qdrant Edge lets one process at a time open a shard (its write-ahead log is locked).
A second process that tries gets :class:`~recsys.errors.LockedError` at once, naming
the directory. ``describe`` of a collection another process holds reports the counts
of its manifest, and ``scroll`` reads a point-in-time copy of it, so status and
carrying vectors over into a rebuild work while the UI is running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from recsys.errors import LockedError, NotFoundError, VectorStoreError
from recsys.vectorstore.base import (
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
    scroll_shard,
    vector_counts,
    vectors_of,
    with_vector,
)
from recsys.vectorstore.edge_versions import VersionDirs, read_pointer, unlock
from recsys.vectorstore.ids import PointKey, point_id
from recsys.vectorstore.spec import CollectionInfo, CollectionSpec, VectorInfo, check_compatible

__all__ = ["EdgeSearchSettings", "EdgeStore"]


@dataclass
class _Opened:
    version: int
    shard: qe.EdgeShard
    stamp: tuple[int, int, int]


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "WouldBlock" in text or "Resource temporarily unavailable" in text


class EdgeStore(VectorStore):
    """Qdrant Edge shards under ``root``, one directory per collection version."""

    def __init__(self, root: str | Path, *, search: EdgeSearchSettings | None = None, keep_versions: int = 2):
        self.root = Path(root)
        self.location = str(self.root)
        self.search_settings = search or EdgeSearchSettings()
        self.keep_versions = max(keep_versions, 1)
        self._open: dict[str, _Opened] = {}
        self._building: dict[tuple[str, int], qe.EdgeShard] = {}
        self._rebuild_locks: dict[str, int] = {}
        self._specs: dict[tuple[str, int], CollectionSpec] = {}
        self._lock = threading.RLock()
        self.dirs = VersionDirs(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreError(f"cannot create the vector store directory {self.root}: {exc}") from exc

    # ---- opening shards ------------------------------------------------------------------------

    def _load(self, path: Path) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:  # the binding raises plain Exception
            if _is_lock_error(exc):
                raise LockedError(
                    f"vector store {path} is open in another process (an embedded shard allows one); "
                    "stop that process or use a Qdrant server"
                ) from None
            raise VectorStoreError(f"cannot open vector store {path}: {exc}") from exc

    def _shard(self, name: str) -> qe.EdgeShard:
        """The shard of the current version, reopened when ``CURRENT`` changed since the last call."""
        pointer = self.dirs.pointer(name)
        try:
            st = os.stat(pointer)
        except FileNotFoundError:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        opened = self._open.get(name)
        if opened is not None and opened.stamp == stamp:
            return opened.shard
        version = read_pointer(pointer)
        if opened is not None and opened.version == version:
            opened.stamp = stamp
            return opened.shard
        shard = self._load(self.dirs.version_dir(name, version))
        if opened is not None:
            opened.shard.close()
        self._open[name] = _Opened(version, shard, stamp)
        return shard

    def _release(self, name: str) -> None:
        opened = self._open.pop(name, None)
        if opened is not None:
            opened.shard.close()

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
                shard = self._shard(spec.name)
                for key, kind in missing.items():
                    shard.update(qe.UpdateOperation.create_field_index(key, FIELD_INDEXES[kind]))
                shard.flush()
                version = self._open[spec.name].version
                manifest = self.dirs.read_manifest(spec.name, version)
                merged = CollectionSpec(stored.name, stored.vectors, {**stored.indexes, **missing})
                manifest["spec"] = merged.as_dict()
                self.dirs.write_manifest(spec.name, version, manifest)
                self._specs.pop((spec.name, version), None)

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._release(name)
            if self.dirs.folder(name).is_dir():
                shutil.rmtree(self.dirs.folder(name))

    def describe(self, name: str) -> CollectionInfo:
        with self._lock:
            spec = self.spec(name)
            version = self.current_version(name) or 0
            try:
                shard = self._shard(name)
            except LockedError:
                manifest = self.dirs.read_manifest(name, version)
                points = int(manifest.get("points", 0))
                counts = manifest.get("vectors", {})
                counted = "at publish"
                indexes = tuple(spec.indexes)
            else:
                points = shard.count(qe.CountRequest(exact=True))
                counts = vector_counts(shard, spec)
                counted = "live"
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
                counted,
            )

    # ---- points --------------------------------------------------------------------------------

    def _upsert_batch(self, name: str, points: list[Point]) -> None:
        with self._lock:
            self._shard(name).update(qe.UpdateOperation.upsert_points([edge_point(p) for p in points]))

    def delete(self, name: str, ids: Sequence[PointKey]) -> None:
        with self._lock:
            if ids:
                self._shard(name).update(qe.UpdateOperation.delete_points([point_id(k) for k in ids]))

    def retrieve(
        self, name: str, ids: Sequence[PointKey], *, with_vectors: bool | Sequence[str] = False
    ) -> list[Record]:
        with self._lock:
            wanted: list[Any] = [point_id(k) for k in ids]
            records = self._shard(name).retrieve(
                wanted, with_payload=True, with_vector=with_vector(with_vectors)
            )
            by_id = {record_id(r.id): r for r in records}
            return [
                Record(pid, dict(r.payload or {}), vectors_of(r.vector))
                for pid in wanted
                if (r := by_id.get(pid)) is not None
            ]

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
        try:
            with self._lock:
                shard = self._shard(name)
        except LockedError:
            yield from self._scroll_copy(name, with_vectors, batch_size)
            return
        yield from scroll_shard(shard, self._lock, with_vectors, batch_size)

    def _scroll_copy(
        self, name: str, with_vectors: bool | Sequence[str], batch_size: int
    ) -> Iterator[Record]:
        """Read a point-in-time copy of a version that another process holds open."""
        version = self.current_version(name)
        if version is None:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}")
        with tempfile.TemporaryDirectory(prefix=f"{name}-v{version}-", dir=self.root) as tmp:
            copy = Path(tmp) / "shard"
            shutil.copytree(self.dirs.version_dir(name, version), copy)
            shard = self._load(copy)
            try:
                yield from scroll_shard(shard, self._lock, with_vectors, batch_size)
            finally:
                shard.close()

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
    ) -> list[Hit]:
        request = qe.QueryRequest(
            query=qe.Query.Nearest(vector, using=using),
            filter=edge_filter(filter),
            limit=limit,
            offset=offset,
            score_threshold=score_threshold,
            params=self.search_settings.search_params(),
            with_payload=True,
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
            params=self.search_settings.search_params(),
            with_payload=True,
            with_vector=False,
        )
        with self._lock:
            return [hit(p) for p in self._shard(name).query(request)]

    # ---- versions ------------------------------------------------------------------------------

    def _create_version(self, spec: CollectionSpec) -> int:
        with self._lock:
            self.dirs.folder(spec.name).mkdir(parents=True, exist_ok=True)
            self._rebuild_locks[spec.name] = self.dirs.take_rebuild_lock(spec.name)
            try:
                current = self.current_version(spec.name) or 0
                self.dirs.remove_abandoned(spec.name, current)
                version = max([current, *self.dirs.version_dirs(spec.name)]) + 1
                path = self.dirs.version_dir(spec.name, version)
                shard = qe.EdgeShard.create(str(path), self.search_settings.shard_config(spec))
                for key, kind in spec.indexes.items():
                    shard.update(qe.UpdateOperation.create_field_index(key, FIELD_INDEXES[kind]))
            except BaseException:
                self._drop_rebuild_lock(spec.name)
                raise
            self._building[(spec.name, version)] = shard
            self._specs[(spec.name, version)] = spec
            return version

    def _write_version(self, name: str, version: int, points: list[Point]) -> None:
        self._building[(name, version)].update(
            qe.UpdateOperation.upsert_points([edge_point(p) for p in points])
        )

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
        shutil.rmtree(self.dirs.version_dir(name, version), ignore_errors=True)
        self.dirs.manifest_path(name, version).unlink(missing_ok=True)
        self._drop_rebuild_lock(name)

    def _publish_version(self, name: str, version: int) -> None:
        with self._lock:
            try:
                self.dirs.publish(name, version)
                self._collect_old(name, version)
            finally:
                self._drop_rebuild_lock(name)

    def _collect_old(self, name: str, current: int) -> None:
        """Delete versions older than the ``keep_versions`` newest, unless another process holds one."""
        for old in self.versions(name):
            if old > current - self.keep_versions:
                continue
            opened = self._open.get(name)
            if opened is not None and opened.version == old:
                self._release(name)
            try:
                self._load(self.dirs.version_dir(name, old)).close()
            except LockedError:
                continue  # a reader still has it; the next publish removes it
            self.dirs.remove(name, old)

    def _drop_rebuild_lock(self, name: str) -> None:
        fd = self._rebuild_locks.pop(name, None)
        if fd is not None:
            unlock(fd)

    def release(self) -> int:
        """Close the shards this process has open, so that another process may open them; the
        next call opens them again. Returns how many were open."""
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
