"""The vector store contract: one interface, documented once, several backends behind it.

Every vector the platform makes (audio, collaborative, playlist, trimodal) is written
and read through :class:`VectorStore`. Two backends implement it:

* :class:`recsys.vectorstore.edge.EdgeStore` — Qdrant Edge, in-process, on disk under
  the data dir (the embedded default);
* :class:`recsys.vectorstore.client.ClientStore` — qdrant-client: a Qdrant server or
  cluster by URL, or qdrant-client's local mode (``:memory:``), which stands in for a
  server in tests.

Vocabulary
----------
collection
    A logical name (``tracks``, ``playlists``) described by a :class:`CollectionSpec`:
    named dense vectors (size and distance each) and payload indexes. Readers always
    address the logical name; it resolves to the collection's *current version*.
version
    ``rebuild`` writes a complete new version (``v1``, ``v2``, …) beside the current one
    and then switches readers to it in one atomic step (an alias on a server, a pointer
    file renamed into place for Edge). A reader sees the old version or the new one,
    never a half-built one; a rebuild that fails midway discards its new version and the
    old one keeps serving. ``ensure_collection`` creates version 1. ``revise`` starts the
    next version as a copy of the current one, to which a job applies its changes (upserts
    and deletes) before it is published the same way; published versions never change.
point
    One id (a catalog id: an unsigned integer, used as is, or a string, mapped to a
    UUIDv5; see :func:`recsys.vectorstore.ids.point_id`), any subset of the
    collection's named vectors, and a JSON payload. Upserting the same point twice
    changes nothing.
filter
    :class:`Filter` of :class:`Match` (keyword, integer or bool equality; on a list
    field it matches when any element equals), :class:`MatchAny` (one of several
    values) and :class:`Range` (numeric bounds) conditions, combined with
    ``must``/``should``/``must_not``. Backends translate it to Qdrant's filter.

Errors (all :class:`recsys.errors.RecsysError`, each one line)
---------------------------------------------------------------
* :class:`~recsys.errors.DimensionMismatchError` — a vector whose length differs from the
  collection's, or ``ensure_collection`` with a spec that disagrees with the stored one;
* :class:`~recsys.errors.NotFoundError` — the collection (or a named vector) does not exist;
* :class:`~recsys.errors.VectorStoreError` — the server cannot be reached (naming the URL)
  or refused the operation;
* :class:`~recsys.errors.LockedError` — another process is writing the next version of
  the collection (a rebuild or a revision) in the embedded store.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recsys.errors import DimensionMismatchError, NotFoundError
from recsys.vectorstore.collections import default_spec
from recsys.vectorstore.ids import PointKey, point_id
from recsys.vectorstore.mmr import mmr_select
from recsys.vectorstore.spec import CollectionInfo, CollectionSpec, check_compatible

VectorLike = Sequence[float] | np.ndarray
"""One dense vector: a sequence of floats or a 1-d numpy array."""

Example = PointKey | VectorLike
"""A recommend example: the id of a stored point, or a vector."""

DEFAULT_BATCH = 256


@dataclass
class Point:
    """A point to write: its id, any subset of the named vectors, and its payload."""

    id: PointKey
    vectors: dict[str, VectorLike] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    """A stored point as read back; ``id`` is the point id (an int, or a UUID string)."""

    id: int | str
    payload: dict[str, Any]
    vectors: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Hit(Record):
    """A search result: a record and its score (larger is better)."""

    score: float = 0.0


@dataclass(frozen=True)
class Match:
    """``key`` equals ``value`` (for a list field: some element equals it)."""

    key: str
    value: str | int | bool


@dataclass(frozen=True)
class MatchAny:
    """``key`` equals one of ``values`` (for a list field: some element does)."""

    key: str
    values: tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class Range:
    """Numeric bounds on ``key``; unset bounds are open."""

    key: str
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


Condition = Match | MatchAny | Range


@dataclass(frozen=True)
class Filter:
    """All of ``must``, at least one of ``should`` (when given), none of ``must_not``."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    @classmethod
    def where(cls, *conditions: Condition) -> Filter:
        """Shorthand for a filter whose conditions must all hold."""
        return cls(must=tuple(conditions))


RecommendStrategy = Literal["best_score", "sum_scores"]


def as_vector(value: VectorLike) -> list[float]:
    """A plain list of floats (what both backends accept)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False).ravel().tolist()
    return [float(x) for x in value]


def is_point_key(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


class VectorStore(ABC):
    """A Qdrant-backed vector store; see the module docstring for the vocabulary.

    Backends implement the abstract methods; the shared behaviour (dimension checks,
    recommend excluding its examples, MMR diversity, versioned rebuild) lives here so it
    is the same on every backend.
    """

    location: str
    """Where the store lives (a directory, ``:memory:`` or a URL), for messages and status."""

    # ---- collections -------------------------------------------------------------------------

    @abstractmethod
    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection (version 1) if it does not exist, else check it matches ``spec``.

        Payload indexes missing from the stored collection are added; a vector whose size
        or distance differs raises ``DimensionMismatchError``.
        """

    @abstractmethod
    def has_collection(self, name: str) -> bool: ...

    @abstractmethod
    def collections(self) -> list[str]:
        """Logical names of the collections in this store, sorted."""

    @abstractmethod
    def spec(self, name: str) -> CollectionSpec:
        """The spec of the current version (``NotFoundError`` when missing)."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Remove a collection and all its versions."""

    @abstractmethod
    def describe(self, name: str) -> CollectionInfo:
        """Current version, all versions, point count and count per named vector."""

    # ---- points ----------------------------------------------------------------------------------

    def upsert(self, name: str, points: Iterable[Point], *, batch_size: int = DEFAULT_BATCH) -> int:
        """Insert or replace points in batches; idempotent by id. Returns how many were written."""
        sizes = self.spec(name).sizes
        written = 0
        batch: list[Point] = []
        for point in points:
            check_dimensions(name, sizes, point)
            batch.append(point)
            if len(batch) >= batch_size:
                self._upsert_batch(name, batch)
                written += len(batch)
                batch = []
        if batch:
            self._upsert_batch(name, batch)
            written += len(batch)
        return written

    @abstractmethod
    def delete(self, name: str, ids: Sequence[PointKey]) -> None:
        """Delete points by id (ids that do not exist are ignored)."""

    @abstractmethod
    def retrieve(
        self, name: str, ids: Sequence[PointKey], *, with_vectors: bool | Sequence[str] = False
    ) -> list[Record]:
        """The stored points with these ids, in the order given; missing ids are left out."""

    @abstractmethod
    def count(self, name: str, *, filter: Filter | None = None, vector: str | None = None) -> int:
        """Exact number of points matching ``filter`` (and having the named ``vector``, if given)."""

    @abstractmethod
    def scroll(
        self, name: str, *, with_vectors: bool | Sequence[str] = True, batch_size: int = 1000
    ) -> Iterator[Record]:
        """Every point of the current version, in id order."""

    @abstractmethod
    def first(self, name: str, limit: int, *, vector: str | None = None) -> list[Record]:
        """The first ``limit`` points by id (only those holding the named ``vector``, if given),
        with payloads and no vectors, read in one request: a cheap sample to start browsing."""

    # ---- search ------------------------------------------------------------------------------------

    def search(
        self,
        name: str,
        vector: VectorLike,
        *,
        using: str,
        filter: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        score_threshold: float | None = None,
        with_vectors: bool = False,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Nearest neighbours of ``vector`` among the points that have the named vector ``using``.

        ``with_payload=False`` leaves each hit's payload empty and skips reading it: for
        callers that need only ids and scores.
        """
        query = as_vector(vector)
        check_query(name, self._serving_spec(name), using, query)
        return self._nearest(
            name, query, using, filter, limit, offset, score_threshold, with_vectors, with_payload
        )

    def recommend(
        self,
        name: str,
        *,
        using: str,
        positive: Sequence[Example],
        negative: Sequence[Example] = (),
        filter: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        score_threshold: float | None = None,
        strategy: RecommendStrategy = "best_score",
    ) -> list[Hit]:
        """Points like the ``positive`` examples and unlike the ``negative`` ones.

        Examples are point ids or vectors; example points themselves are never returned.
        ``best_score`` ranks by the best similarity to any positive (penalised when a
        negative is closer); ``sum_scores`` by the sum of similarities to the positives
        minus those to the negatives.
        """
        if not positive:
            raise ValueError("recommend needs at least one positive example")
        spec = self._serving_spec(name)
        pos, pos_ids = self._resolve_examples(name, using, positive)
        neg, neg_ids = self._resolve_examples(name, using, negative)
        for vec in (*pos, *neg):
            check_query(name, spec, using, vec)
        excluded = {*pos_ids, *neg_ids}
        fetched = self._recommend(
            name, pos, neg, using, filter, limit + offset + len(excluded), score_threshold, strategy
        )
        kept = [hit for hit in fetched if hit.id not in excluded]
        return kept[offset : offset + limit]

    def diverse(
        self,
        name: str,
        vector: VectorLike,
        *,
        using: str,
        filter: Filter | None = None,
        limit: int = 10,
        candidates: int = 100,
        diversity: float = 0.5,
    ) -> list[Hit]:
        """Maximal marginal relevance: relevant to ``vector`` yet unlike each other.

        ``diversity`` 0 is plain nearest search, 1 ignores relevance after the first pick.
        Scores of the returned hits are their similarity to the query.
        """
        pool = self.search(
            name, vector, using=using, filter=filter, limit=max(candidates, limit), with_vectors=True
        )
        distance = self.spec(name).vector(using).distance
        chosen = mmr_select(
            np.asarray(as_vector(vector), dtype=np.float32),
            np.asarray([hit.vectors[using] for hit in pool], dtype=np.float32).reshape(len(pool), -1),
            limit,
            diversity=diversity,
            distance=distance,
        )
        return [pool[i] for i in chosen]

    # ---- versions ------------------------------------------------------------------------------

    def rebuild(
        self, spec: CollectionSpec, points: Iterable[Point], *, batch_size: int = DEFAULT_BATCH
    ) -> int:
        """Write a complete new version from ``points``, index it, then switch readers to it.

        Returns the new version number. If anything fails before the switch, the new
        version is discarded and the previous one (if any) keeps serving.
        """
        with self._drafting(spec, self._create_version(spec)) as draft:
            draft.upsert(points, batch_size=batch_size)
        return draft.version

    @contextmanager
    def revise(self, name: str, *, spec: CollectionSpec | None = None) -> Iterator[Draft]:
        """The next version of ``name`` as a :class:`Draft`: a copy of the serving version to change.

        ::

            with store.revise("tracks") as draft:
                draft.upsert(points)
                draft.delete(ids)

        On a normal exit the draft is sealed (indexed) and published in one atomic switch;
        if the block raises, the draft is discarded and the serving version is unchanged.
        Readers never see a draft. A collection that does not exist yet starts empty, from
        ``spec`` or the platform's default spec for ``name``; for one that exists, ``spec``
        may add payload indexes (vectors are added or resized by :meth:`rebuild`). One
        draft or rebuild of a collection at a time (another gets ``LockedError``).
        """
        target = self._revision_spec(name, spec)
        exists = self.has_collection(name)
        version = self._create_draft(target) if exists else self._create_version(target)
        with self._drafting(target, version) as draft:
            yield draft

    @contextmanager
    def _drafting(self, spec: CollectionSpec, version: int) -> Iterator[Draft]:
        draft = Draft(self, spec, version)
        try:
            yield draft
            if draft.abandoned:
                self._discard_version(spec.name, version)
                return
            self._seal_version(spec.name, version)
        except BaseException:
            self._discard_version(spec.name, version)
            raise
        self._publish_version(spec.name, version)

    def _revision_spec(self, name: str, spec: CollectionSpec | None) -> CollectionSpec:
        if not self.has_collection(name):
            return spec if spec is not None else default_spec(name)
        stored = self.spec(name)
        if spec is None:
            return stored
        check_compatible(self.location, stored, spec)
        return CollectionSpec(stored.name, stored.vectors, {**stored.indexes, **spec.indexes})

    def _create_draft(self, spec: CollectionSpec) -> int:
        """A new version holding every point of the serving one, not visible to readers.

        This copies point by point; a backend that can copy a version whole overrides it.
        """
        version = self._create_version(spec)
        try:
            batch: list[Point] = []
            for record in self.scroll(spec.name, with_vectors=True):
                batch.append(Point(record.id, dict(record.vectors), record.payload))
                if len(batch) >= DEFAULT_BATCH:
                    self._write_version(spec.name, version, batch)
                    batch = []
            if batch:
                self._write_version(spec.name, version, batch)
        except BaseException:
            self._discard_version(spec.name, version)
            raise
        return version

    def _serving_spec(self, name: str) -> CollectionSpec:
        """The spec of the version a query of ``name`` reads now; a backend that knows it
        without asking (an embedded reader holding a version open) overrides this."""
        return self.spec(name)

    @abstractmethod
    def versions(self, name: str) -> list[int]:
        """Every complete version of the collection still stored, ascending."""

    @abstractmethod
    def current_version(self, name: str) -> int | None:
        """The version readers see now, or None when the collection does not exist."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections; the store is unusable afterwards."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- backend hooks -----------------------------------------------------------------------

    @abstractmethod
    def _upsert_batch(self, name: str, points: list[Point]) -> None: ...

    @abstractmethod
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
    ) -> list[Hit]: ...

    @abstractmethod
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
    ) -> list[Hit]: ...

    @abstractmethod
    def _create_version(self, spec: CollectionSpec) -> int:
        """Make an empty new version (not visible to readers) and return its number."""

    @abstractmethod
    def _write_version(self, name: str, version: int, points: list[Point]) -> None: ...

    @abstractmethod
    def _delete_in_version(self, name: str, version: int, ids: list[PointKey]) -> None: ...

    @abstractmethod
    def _retrieve_in_version(
        self, name: str, version: int, ids: list[PointKey], with_vectors: bool | Sequence[str]
    ) -> list[Record]: ...

    @abstractmethod
    def _ids_in_version(self, name: str, version: int) -> list[PointKey]: ...

    @abstractmethod
    def _seal_version(self, name: str, version: int) -> None:
        """Flush and index the new version so it serves at full speed once published."""

    @abstractmethod
    def _discard_version(self, name: str, version: int) -> None: ...

    @abstractmethod
    def _publish_version(self, name: str, version: int) -> None:
        """Switch readers to ``version`` atomically and drop versions no longer needed."""

    # ---- shared helpers ------------------------------------------------------------------------

    def _resolve_examples(
        self, name: str, using: str, examples: Sequence[Example]
    ) -> tuple[list[list[float]], list[int | str]]:
        vectors: list[list[float]] = []
        keys = [e for e in examples if is_point_key(e)]
        ids = [point_id(k) for k in keys]  # type: ignore[arg-type]
        for example in examples:
            if not is_point_key(example):
                vectors.append(as_vector(example))  # type: ignore[arg-type]
        if ids:
            found = {r.id: r for r in self.retrieve(name, keys, with_vectors=[using])}  # type: ignore[arg-type]
            for key, pid in zip(keys, ids, strict=True):
                record = found.get(pid)
                if record is None:
                    raise NotFoundError(f"collection {name!r}: example point {key!r} does not exist")
                if using not in record.vectors:
                    raise NotFoundError(f"collection {name!r}: example point {key!r} has no {using!r} vector")
                vectors.append(record.vectors[using])
        return vectors, ids


def check_dimensions(name: str, sizes: Mapping[str, int], point: Point) -> None:
    """Raise ``DimensionMismatchError``/``NotFoundError`` for a vector the collection cannot hold."""
    for vector_name, value in point.vectors.items():
        expected = sizes.get(vector_name)
        if expected is None:
            raise NotFoundError(f"collection {name!r} has no vector {vector_name!r} (point {point.id!r})")
        got = len(value)
        if got != expected:
            raise DimensionMismatchError(
                f"collection {name!r}, vector {vector_name!r}: expected {expected} dimensions, "
                f"got {got} (point {point.id!r})"
            )


def check_query(name: str, spec: CollectionSpec, using: str, vector: list[float]) -> None:
    expected = spec.vector(using).size
    if len(vector) != expected:
        raise DimensionMismatchError(
            f"collection {name!r}, vector {using!r}: expected {expected} dimensions, got a query of {len(vector)}"
        )
    # The sum is finite when every element is (one pass in C); only a sum that is not
    # finite, from a NaN, an infinity or an overflow of huge values, needs the element check.
    if not math.isfinite(sum(vector)) and not all(math.isfinite(x) for x in vector):
        raise ValueError(f"collection {name!r}, vector {using!r}: the query holds NaN or infinity")


class Draft:
    """The next version of a collection while :meth:`VectorStore.revise` (or a rebuild) writes it.

    Readers never see it; it is published, or discarded, when the ``with`` block ends.
    """

    def __init__(self, store: VectorStore, spec: CollectionSpec, version: int):
        self.store = store
        self.spec = spec
        self.version = version
        self.abandoned = False

    @property
    def name(self) -> str:
        return self.spec.name

    def upsert(self, points: Iterable[Point], *, batch_size: int = DEFAULT_BATCH) -> int:
        """Insert or replace points (idempotent by id); returns how many were written."""
        sizes = self.spec.sizes
        written = 0
        batch: list[Point] = []
        for point in points:
            check_dimensions(self.name, sizes, point)
            batch.append(point)
            if len(batch) >= batch_size:
                self.store._write_version(self.name, self.version, batch)
                written += len(batch)
                batch = []
        if batch:
            self.store._write_version(self.name, self.version, batch)
            written += len(batch)
        return written

    def delete(self, ids: Sequence[PointKey]) -> None:
        """Delete points by id (ids that do not exist are ignored)."""
        if ids:
            self.store._delete_in_version(self.name, self.version, list(ids))

    def retrieve(
        self, ids: Sequence[PointKey], *, with_vectors: bool | Sequence[str] = False
    ) -> list[Record]:
        """Points of the draft as written so far (a copy of the serving version plus this draft's
        changes), in the order given; missing ids are left out."""
        wanted = list(ids)
        return (
            self.store._retrieve_in_version(self.name, self.version, wanted, with_vectors) if wanted else []
        )

    def point_ids(self) -> list[PointKey]:
        """Every point id of the draft as written so far, in id order."""
        return self.store._ids_in_version(self.name, self.version)

    def abandon(self) -> None:
        """Publish nothing when the block ends: the draft is discarded and the serving version
        stays (for a job that found, reading the draft, that there is nothing to change)."""
        self.abandoned = True
