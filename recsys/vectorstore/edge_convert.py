"""Between the contract's types and Qdrant Edge's: shard configuration, filters, points, hits.

Nothing here touches the disk; :mod:`recsys.vectorstore.edge` opens the shards and
:mod:`recsys.vectorstore.edge_versions` lays out their directories.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import qdrant_edge as qe

from recsys.vectorstore.base import Filter, Hit, Match, MatchAny, Point, Range, Record, as_vector
from recsys.vectorstore.ids import PointKey, point_id
from recsys.vectorstore.spec import CollectionSpec, Distance, FieldType

DISTANCES = {
    Distance.COSINE: qe.Distance.Cosine,
    Distance.DOT: qe.Distance.Dot,
    Distance.EUCLID: qe.Distance.Euclid,
}
# Payload indexes live in RAM: a filter checks every candidate against them, and read
# from disk-backed structures that check cost most of a filtered query (2.8 ms → 1.0 ms
# at 100,000 points; see docs/benchmarks.md).
FIELD_INDEXES: dict[FieldType, Any] = {
    FieldType.KEYWORD: qe.KeywordIndexParams(on_disk=False),
    FieldType.INTEGER: qe.IntegerIndexParams(lookup=True, range=True, on_disk=False),
    FieldType.FLOAT: qe.FloatIndexParams(on_disk=False),
    FieldType.BOOL: qe.BoolIndexParams(on_disk=False),
}

QDRANT_FULL_SCAN_KB = 10_000  # Qdrant's default full-scan threshold
QUANTIZED_FULL_SCAN_KB = 36_000  # the break-even of a scan of int8 copies and a filtered walk


@dataclass(frozen=True)
class EdgeSearchSettings:
    """HNSW build and search settings shipped with the embedded store (see docs/benchmarks.md).

    Vectors are also kept as int8 (scalar quantisation, always in RAM): searches walk the
    graph on the int8 copies, take ``oversampling`` times the requested candidates and
    rescore them with the full float32 vectors, so the ranking is exact over what the
    graph found.

    A filtered search scores the filter's matches one by one (exact) when, by the payload
    indexes' estimate, they hold less than ``full_scan_threshold_kb`` of float32 vectors,
    and walks the graph with the filter applied when they hold more; in between, Qdrant
    samples points to decide, query by query. Scanning int8 copies costs about a quarter
    of what Qdrant's own default (10,000 KB, about 3,300 points of 768-d) assumes, so with
    quantisation the threshold is 36,000 KB (about 12,000 points of 768-d, where a scan
    and a walk cost the same on 100,000 points; see docs/benchmarks.md): a selective
    catalog filter (a genre, a genre and a span of years) is answered by one exact scan
    instead of a coin toss between a scan and a slower walk that misses some neighbours.
    Without quantisation it is Qdrant's default.

    ``max_segment_kb`` bounds the segments that merges make; a version written in one go
    and then sealed is indexed as one segment whatever its size (the benchmark reports
    the count).
    """

    m: int = 16
    ef_construct: int = 128
    hnsw_ef: int = 128
    full_scan_threshold_kb: int | None = None  # None: 36,000 with int8 quantisation, else 10,000
    max_segment_kb: int = 160_000
    indexing_threshold_kb: int | None = None  # None: Qdrant's own (a segment is indexed past it)
    quantize: bool = True
    oversampling: float = 2.0
    indexing_threads: int = 0  # 0: as many as the machine has
    search_threads: int | None = None  # None: derived from the CPU count

    @property
    def full_scan_kb(self) -> int:
        """The filtered full-scan threshold the shard is created with, in KB of float32 vectors."""
        if self.full_scan_threshold_kb is not None:
            return self.full_scan_threshold_kb
        return QUANTIZED_FULL_SCAN_KB if self.quantize else QDRANT_FULL_SCAN_KB

    def shard_config(self, spec: CollectionSpec) -> qe.EdgeConfig:
        """The configuration of a new shard holding ``spec``'s vectors."""
        return qe.EdgeConfig(
            vectors={v.name: qe.EdgeVectorParams(v.size, DISTANCES[v.distance]) for v in spec.vectors},
            hnsw_config=qe.HnswIndexConfig(
                m=self.m,
                ef_construct=self.ef_construct,
                full_scan_threshold=self.full_scan_kb,
                max_indexing_threads=self.indexing_threads,
            ),
            optimizers=qe.EdgeOptimizersConfig(
                max_segment_size=self.max_segment_kb, indexing_threshold=self.indexing_threshold_kb
            ),
            on_disk_payload=False,  # payloads of hits (and unindexed filters) read from RAM
            quantization_config=(
                qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
                if self.quantize
                else None
            ),
            max_search_threads=self.search_threads,
        )

    def search_params(self) -> qe.SearchParams:
        quantization = (
            qe.QuantizationSearchParams(rescore=True, oversampling=self.oversampling)
            if self.quantize
            else None
        )
        return qe.SearchParams(hnsw_ef=self.hnsw_ef, quantization=quantization)


def edge_filter(flt: Filter | None, *, has_vector: str | None = None) -> qe.Filter | None:
    """Translate the contract's filter (and an optional has-vector condition) to Qdrant Edge's.

    A service asks with the same few filters again and again, so translations are kept
    (the contract's filters are frozen, hence hashable) and reused: a query pays for a
    dictionary look-up, not for building Qdrant's conditions again.
    """
    if flt is None:
        return _cached_filter(None, has_vector, ())
    try:
        return _cached_filter(flt, has_vector, _value_types(flt))
    except TypeError:  # a condition holding an unhashable value (a list where a tuple belongs)
        return _translate_filter(flt, has_vector)


def _value_types(flt: Filter) -> tuple[type, ...]:
    """The types of the matched values: ``True == 1`` (and they hash alike), yet Qdrant
    matches a bool and an integer differently, so the types are part of the cache key."""
    types: list[type] = []
    for cond in (*flt.must, *flt.should, *flt.must_not):
        if isinstance(cond, Match):
            types.append(type(cond.value))
        elif isinstance(cond, MatchAny):
            types.extend(type(v) for v in cond.values)
    return tuple(types)


@functools.lru_cache(maxsize=1024)
def _cached_filter(flt: Filter | None, has_vector: str | None, types: tuple[type, ...]) -> qe.Filter | None:
    return _translate_filter(flt, has_vector)


def _translate_filter(flt: Filter | None, has_vector: str | None) -> qe.Filter | None:
    must: list[Any] = [_condition(c) for c in _cheap_first(flt.must)] if flt else []
    if has_vector is not None:
        must.append(qe.HasVectorCondition(has_vector))
    should: list[Any] = [_condition(c) for c in flt.should] if flt else []
    must_not: list[Any] = [_condition(c) for c in flt.must_not] if flt else []
    if not (must or should or must_not):
        return None
    return qe.Filter(must=must or None, should=should or None, must_not=must_not or None)


def _cheap_first(conditions: tuple[Match | MatchAny | Range, ...]) -> list[Match | MatchAny | Range]:
    """``must`` conditions in the order Qdrant should check them: numeric ones first.

    Qdrant checks a point against the conditions of ``must`` in the order given and stops
    at the first that fails. A keyword condition looks the point's strings up and compares
    them; a range or an integer match compares numbers, several times cheaper. Checking
    the numbers first leaves the strings to the points that passed them: with a genre and
    a span of years (40 % of the points pass), a filtered search costs about a quarter
    less (see docs/benchmarks.md). The order within each kind is kept; the answer is the same.
    """
    return sorted(conditions, key=lambda c: 0 if _numeric(c) else 1)


def _numeric(cond: Match | MatchAny | Range) -> bool:
    if isinstance(cond, Range):
        return True
    values = (cond.value,) if isinstance(cond, Match) else cond.values
    return all(isinstance(v, int | float) for v in values)  # bools are ints too


def _condition(cond: Match | MatchAny | Range) -> qe.FieldCondition:
    if isinstance(cond, Match):
        return qe.FieldCondition(cond.key, match=qe.MatchValue(cond.value))
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(cond.key, match=qe.MatchAny(list[Any](cond.values)))
    return qe.FieldCondition(
        cond.key, range=qe.RangeFloat(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
    )


def vector_counts(shard: qe.EdgeShard, spec: CollectionSpec) -> dict[str, int]:
    """How many points of ``shard`` hold each named vector of ``spec``."""
    return {
        v.name: shard.count(qe.CountRequest(filter=edge_filter(None, has_vector=v.name), exact=True))
        for v in spec.vectors
    }


def record_id(value: Any) -> int | str:
    return str(value) if isinstance(value, uuid.UUID) else value


def vectors_of(value: Any) -> dict[str, list[float]]:
    return dict(value) if isinstance(value, dict) else {}


def edge_point(point: Point) -> qe.Point:
    vectors = {name: as_vector(value) for name, value in point.vectors.items()}
    return qe.Point(point_id(point.id), vectors, point.payload)  # type: ignore[arg-type]


def hit(scored: Any) -> Hit:
    """A contract hit from Qdrant Edge's scored point (read once per attribute: each read converts)."""
    pid, payload, vector = scored.id, scored.payload, scored.vector
    return Hit(
        str(pid) if isinstance(pid, uuid.UUID) else pid,
        dict(payload) if payload else {},
        dict(vector) if isinstance(vector, dict) else {},
        float(scored.score),
    )


def with_vector(value: bool | Sequence[str]) -> bool | list[str]:
    return value if isinstance(value, bool) else list(value)


def scroll_shard(
    shard: qe.EdgeShard, lock: threading.RLock, with_vectors: bool | Sequence[str], batch_size: int
) -> Iterator[Record]:
    """Every point of ``shard`` in id order, ``batch_size`` at a time, each batch read under ``lock``."""
    offset: Any = None
    while True:
        with lock:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=batch_size, with_payload=True, with_vector=with_vector(with_vectors)
                )
            )
        for r in records:
            yield Record(record_id(r.id), dict(r.payload or {}), vectors_of(r.vector))
        if offset is None:
            return


def scroll_ids(shard: qe.EdgeShard, lock: threading.RLock, batch_size: int = 20_000) -> list[PointKey]:
    """Every point id of ``shard`` in id order, read a page at a time under ``lock``."""
    ids: list[PointKey] = []
    offset: Any = None
    while True:
        with lock:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=batch_size, with_payload=False, with_vector=False)
            )
        ids.extend(record_id(r.id) for r in records)
        if offset is None:
            return ids


def retrieve_records(
    shard: qe.EdgeShard, ids: Sequence[PointKey], with_vectors: bool | Sequence[str]
) -> list[Record]:
    """The points of ``shard`` with these ids, in the order given; missing ids are left out."""
    wanted: list[Any] = [point_id(k) for k in ids]
    records = shard.retrieve(wanted, with_payload=True, with_vector=with_vector(with_vectors))
    by_id = {record_id(r.id): r for r in records}
    return [
        Record(pid, dict(r.payload or {}), vectors_of(r.vector))
        for pid in wanted
        if (r := by_id.get(pid)) is not None
    ]
