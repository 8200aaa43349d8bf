"""Qdrant Edge backend: the Qdrant engine in-process, stored under the data dir (the default).

Layout under the store's root directory::

    <root>/<collection>/v<N>/        one Edge shard per version (HNSW, payload indexes, WAL)
    <root>/<collection>/v<N>.json    the version's manifest: spec, counts when published
    <root>/<collection>/CURRENT      the number of the version readers use
    <root>/<collection>/.rebuild.lock held while a rebuild of the collection runs

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

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from recsys.errors import LockedError, NotFoundError, VectorStoreError
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
    PointKey,
    Range,
    RecommendStrategy,
    Record,
    VectorInfo,
    VectorStore,
    as_vector,
    check_compatible,
)
from recsys.vectorstore.collections import point_id

POINTER = "CURRENT"

_DISTANCE = {
    Distance.COSINE: qe.Distance.Cosine,
    Distance.DOT: qe.Distance.Dot,
    Distance.EUCLID: qe.Distance.Euclid,
}
# Payload indexes live in RAM: a filter checks every candidate against them, and read
# from disk-backed structures that check cost most of a filtered query (2.8 ms → 1.0 ms
# at 100,000 points; see docs/benchmarks.md).
_FIELD: dict[FieldType, Any] = {
    FieldType.KEYWORD: qe.KeywordIndexParams(on_disk=False),
    FieldType.INTEGER: qe.IntegerIndexParams(lookup=True, range=True, on_disk=False),
    FieldType.FLOAT: qe.FloatIndexParams(on_disk=False),
    FieldType.BOOL: qe.BoolIndexParams(on_disk=False),
}


@dataclass(frozen=True)
class EdgeSearchSettings:
    """HNSW build and search settings shipped with the embedded store (see docs/benchmarks.md).

    Vectors are also kept as int8 (scalar quantisation, always in RAM): searches walk the
    graph on the int8 copies, take ``oversampling`` times the requested candidates and
    rescore them with the full float32 vectors, so the ranking is exact over what the
    graph found. A filter whose matches hold less than ``full_scan_threshold_kb`` of
    vectors (about 3,300 points of 768-d) is answered by scanning its matches; a larger
    one walks the graph with the filter applied. Segments hold at most
    ``max_segment_kb`` of vectors (about 50,000 points of 768-d), so a large collection
    spreads over several segments that one query searches side by side.
    """

    m: int = 16
    ef_construct: int = 128
    hnsw_ef: int = 128
    full_scan_threshold_kb: int = 10_000
    max_segment_kb: int = 160_000
    quantize: bool = True
    oversampling: float = 2.0
    indexing_threads: int = 0  # 0: as many as the machine has
    search_threads: int | None = None  # None: derived from the CPU count


@dataclass
class _Opened:
    version: int
    shard: qe.EdgeShard
    stamp: tuple[int, int, int]


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "WouldBlock" in text or "Resource temporarily unavailable" in text


def edge_filter(flt: Filter | None, *, has_vector: str | None = None) -> qe.Filter | None:
    """Translate the contract's filter (and an optional has-vector condition) to Qdrant Edge's."""
    must: list[Any] = [_condition(c) for c in flt.must] if flt else []
    if has_vector is not None:
        must.append(qe.HasVectorCondition(has_vector))
    should: list[Any] = [_condition(c) for c in flt.should] if flt else []
    must_not: list[Any] = [_condition(c) for c in flt.must_not] if flt else []
    if not (must or should or must_not):
        return None
    return qe.Filter(must=must or None, should=should or None, must_not=must_not or None)


def _condition(cond: Match | MatchAny | Range) -> qe.FieldCondition:
    if isinstance(cond, Match):
        return qe.FieldCondition(cond.key, match=qe.MatchValue(cond.value))
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(cond.key, match=qe.MatchAny(list[Any](cond.values)))
    return qe.FieldCondition(
        cond.key, range=qe.RangeFloat(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
    )


def _record_id(value: Any) -> int | str:
    return str(value) if isinstance(value, uuid.UUID) else value


def _vectors(value: Any) -> dict[str, list[float]]:
    return dict(value) if isinstance(value, dict) else {}


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
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreError(f"cannot create the vector store directory {self.root}: {exc}") from exc

    # ---- paths and manifests -------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / name

    def _version_dir(self, name: str, version: int) -> Path:
        return self._dir(name) / f"v{version}"

    def _manifest_path(self, name: str, version: int) -> Path:
        return self._dir(name) / f"v{version}.json"

    def _read_manifest(self, name: str, version: int) -> dict[str, Any]:
        path = self._manifest_path(name, version)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(
                f"vector store {self.root}: version {version} of {name!r} has no manifest"
            ) from None
        except (OSError, ValueError) as exc:
            raise VectorStoreError(f"{path}: unreadable manifest ({exc})") from exc

    def _write_manifest(self, name: str, version: int, data: dict[str, Any]) -> None:
        _atomic_write(self._manifest_path(name, version), json.dumps(data, indent=2, sort_keys=True))

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
        pointer = self._dir(name) / POINTER
        try:
            st = os.stat(pointer)
        except FileNotFoundError:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        opened = self._open.get(name)
        if opened is not None and opened.stamp == stamp:
            return opened.shard
        version = _read_pointer(pointer)
        if opened is not None and opened.version == version:
            opened.stamp = stamp
            return opened.shard
        shard = self._load(self._version_dir(name, version))
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
        return (self._dir(name) / POINTER).is_file()

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / POINTER).is_file())

    def current_version(self, name: str) -> int | None:
        pointer = self._dir(name) / POINTER
        return _read_pointer(pointer) if pointer.is_file() else None

    def versions(self, name: str) -> list[int]:
        found = []
        for path in self._dir(name).glob("v*.json") if self._dir(name).is_dir() else []:
            number = path.stem[1:]
            if number.isdigit() and self._version_dir(name, int(number)).is_dir():
                found.append(int(number))
        return sorted(found)

    def spec(self, name: str) -> CollectionSpec:
        version = self.current_version(name)
        if version is None:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}")
        key = (name, version)
        if key not in self._specs:
            self._specs[key] = CollectionSpec.from_dict(self._read_manifest(name, version)["spec"])
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
                    shard.update(qe.UpdateOperation.create_field_index(key, _FIELD[kind]))
                shard.flush()
                version = self._open[spec.name].version
                manifest = self._read_manifest(spec.name, version)
                merged = CollectionSpec(stored.name, stored.vectors, {**stored.indexes, **missing})
                manifest["spec"] = merged.as_dict()
                self._write_manifest(spec.name, version, manifest)
                self._specs.pop((spec.name, version), None)

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._release(name)
            if self._dir(name).is_dir():
                shutil.rmtree(self._dir(name))

    def describe(self, name: str) -> CollectionInfo:
        with self._lock:
            spec = self.spec(name)
            version = self.current_version(name) or 0
            try:
                shard = self._shard(name)
            except LockedError:
                manifest = self._read_manifest(name, version)
                points = int(manifest.get("points", 0))
                counts = manifest.get("vectors", {})
                counted = "at publish"
                indexes = tuple(spec.indexes)
            else:
                points = shard.count(qe.CountRequest(exact=True))
                counts = {
                    v.name: shard.count(
                        qe.CountRequest(filter=edge_filter(None, has_vector=v.name), exact=True)
                    )
                    for v in spec.vectors
                }
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
            self._shard(name).update(qe.UpdateOperation.upsert_points([_edge_point(p) for p in points]))

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
                wanted, with_payload=True, with_vector=_with_vector(with_vectors)
            )
            by_id = {_record_id(r.id): r for r in records}
            return [
                Record(pid, dict(r.payload or {}), _vectors(r.vector))
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
        yield from _scroll_shard(shard, self._lock, with_vectors, batch_size)

    def _scroll_copy(
        self, name: str, with_vectors: bool | Sequence[str], batch_size: int
    ) -> Iterator[Record]:
        """Read a point-in-time copy of a version that another process holds open."""
        version = self.current_version(name)
        if version is None:
            raise NotFoundError(f"vector store {self.root} has no collection {name!r}")
        with tempfile.TemporaryDirectory(prefix=f"{name}-v{version}-", dir=self.root) as tmp:
            copy = Path(tmp) / "shard"
            shutil.copytree(self._version_dir(name, version), copy)
            shard = self._load(copy)
            try:
                yield from _scroll_shard(shard, self._lock, with_vectors, batch_size)
            finally:
                shard.close()

    # ---- search --------------------------------------------------------------------------------

    def _params(self) -> qe.SearchParams:
        settings = self.search_settings
        quantization = (
            qe.QuantizationSearchParams(rescore=True, oversampling=settings.oversampling)
            if settings.quantize
            else None
        )
        return qe.SearchParams(hnsw_ef=settings.hnsw_ef, quantization=quantization)

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
            params=self._params(),
            with_payload=True,
            with_vector=[using] if with_vectors else False,
        )
        with self._lock:
            return [_hit(p) for p in self._shard(name).query(request)]

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
            params=self._params(),
            with_payload=True,
            with_vector=False,
        )
        with self._lock:
            return [_hit(p) for p in self._shard(name).query(request)]

    # ---- versions ------------------------------------------------------------------------------

    def _create_version(self, spec: CollectionSpec) -> int:
        with self._lock:
            folder = self._dir(spec.name)
            folder.mkdir(parents=True, exist_ok=True)
            self._take_rebuild_lock(spec.name)
            try:
                current = self.current_version(spec.name) or 0
                self._remove_abandoned(spec.name, current)
                version = max([current, *self._version_dirs(spec.name)]) + 1
                settings = self.search_settings
                config = qe.EdgeConfig(
                    vectors={
                        v.name: qe.EdgeVectorParams(v.size, _DISTANCE[v.distance]) for v in spec.vectors
                    },
                    hnsw_config=qe.HnswIndexConfig(
                        m=settings.m,
                        ef_construct=settings.ef_construct,
                        full_scan_threshold=settings.full_scan_threshold_kb,
                        max_indexing_threads=settings.indexing_threads,
                    ),
                    optimizers=qe.EdgeOptimizersConfig(max_segment_size=settings.max_segment_kb),
                    on_disk_payload=False,  # payloads of hits (and unindexed filters) read from RAM
                    quantization_config=(
                        qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
                        if settings.quantize
                        else None
                    ),
                    max_search_threads=settings.search_threads,
                )
                path = self._version_dir(spec.name, version)
                shard = qe.EdgeShard.create(str(path), config)
                for key, kind in spec.indexes.items():
                    shard.update(qe.UpdateOperation.create_field_index(key, _FIELD[kind]))
            except BaseException:
                self._drop_rebuild_lock(spec.name)
                raise
            self._building[(spec.name, version)] = shard
            self._specs[(spec.name, version)] = spec
            return version

    def _write_version(self, name: str, version: int, points: list[Point]) -> None:
        self._building[(name, version)].update(
            qe.UpdateOperation.upsert_points([_edge_point(p) for p in points])
        )

    def _seal_version(self, name: str, version: int) -> None:
        shard = self._building[(name, version)]
        shard.optimize()
        shard.flush()
        spec = self._specs[(name, version)]
        counts = {
            v.name: shard.count(qe.CountRequest(filter=edge_filter(None, has_vector=v.name), exact=True))
            for v in spec.vectors
        }
        manifest = {
            "spec": spec.as_dict(),
            "points": shard.count(qe.CountRequest(exact=True)),
            "vectors": counts,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        shard.close()
        del self._building[(name, version)]
        self._write_manifest(name, version, manifest)

    def _discard_version(self, name: str, version: int) -> None:
        shard = self._building.pop((name, version), None)
        if shard is not None:
            shard.close()
        self._specs.pop((name, version), None)
        shutil.rmtree(self._version_dir(name, version), ignore_errors=True)
        self._manifest_path(name, version).unlink(missing_ok=True)
        self._drop_rebuild_lock(name)

    def _publish_version(self, name: str, version: int) -> None:
        with self._lock:
            try:
                _atomic_write(self._dir(name) / POINTER, f"{version}\n")
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
            path = self._version_dir(name, old)
            try:
                self._load(path).close()
            except LockedError:
                continue  # a reader still has it; the next publish removes it
            self._manifest_path(name, old).unlink(missing_ok=True)
            shutil.rmtree(path, ignore_errors=True)

    def _version_dirs(self, name: str) -> list[int]:
        return [int(p.name[1:]) for p in self._dir(name).glob("v*") if p.is_dir() and p.name[1:].isdigit()]

    def _remove_abandoned(self, name: str, current: int) -> None:
        """Remove directories of rebuilds that died before publishing (we hold the rebuild lock)."""
        complete = set(self.versions(name))
        for number in self._version_dirs(name):
            if number > current and number not in complete:
                shutil.rmtree(self._version_dir(name, number), ignore_errors=True)

    def _take_rebuild_lock(self, name: str) -> None:
        path = self._dir(name) / ".rebuild.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"a rebuild of {name!r} in {self.root} is already running in another process"
            ) from None
        self._rebuild_locks[name] = fd

    def _drop_rebuild_lock(self, name: str) -> None:
        fd = self._rebuild_locks.pop(name, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

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


def _edge_point(point: Point) -> qe.Point:
    vectors = {name: as_vector(value) for name, value in point.vectors.items()}
    return qe.Point(point_id(point.id), vectors, point.payload)  # type: ignore[arg-type]


def _hit(scored: Any) -> Hit:
    return Hit(
        _record_id(scored.id), dict(scored.payload or {}), _vectors(scored.vector), float(scored.score)
    )


def _with_vector(value: bool | Sequence[str]) -> bool | list[str]:
    return value if isinstance(value, bool) else list(value)


def _scroll_shard(
    shard: qe.EdgeShard, lock: threading.RLock, with_vectors: bool | Sequence[str], batch_size: int
) -> Iterator[Record]:
    offset: Any = None
    while True:
        with lock:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=batch_size, with_payload=True, with_vector=_with_vector(with_vectors)
                )
            )
        for r in records:
            yield Record(_record_id(r.id), dict(r.payload or {}), _vectors(r.vector))
        if offset is None:
            return


def _read_pointer(path: Path) -> int:
    text = path.read_text().strip()
    if not text.isdigit():
        raise VectorStoreError(f"{path}: expected a version number, found {text[:40]!r}")
    return int(text)


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
