"""What the API's routes share, opened once per process: the catalog engine, the vector store,
the continuation service and the video–music scorer.

The same objects, built by the same library calls, as the UI holds (``ui/services.py``):
the continuation service is rebuilt when :func:`~recsys.recommend.service.continuation_versions`
changes (a newer ALS or seq2seq model, a newer ingested input; looked at most every
``VERSIONS_TTL_S`` seconds), the scorer when its bundle file changes, and the embedded
store is let go of after ``ui_store_idle_s`` seconds without a request. Each is built by
one thread while requests that need it wait.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recsys.api.errors import ApiError, not_ready
from recsys.catalog import db
from recsys.config import Settings
from recsys.errors import RecsysError
from recsys.heap import settle_heap, unsettle_heap
from recsys.models.trimodal_bundle import load_bundle, model_file
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.service import continuation_versions, serving_service
from recsys.recommend.video_scoring import VideoScorer
from recsys.vectorstore import open_store
from recsys.vectorstore.base import VectorStore
from recsys.vectorstore.held import IdleStore

VERSIONS_TTL_S = 2.0  # how stale the continuation service may be after a model or an ingest

log = logging.getLogger("recsys.api")


class Services:
    """The objects the routes serve from; ``warm`` builds them ahead of the first request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._store: IdleStore | None = None
        self._continuation: tuple[tuple[Any, ...], ContinuationService] | None = None
        self._versions: tuple[float, tuple[Any, ...]] | None = None
        self._scorer: tuple[int, VideoScorer] | None = None
        self.problems: dict[str, str] = {}  # what could not be built at warm-up, and why

    # ------------------------------------------------------------------ engine and store

    def engine(self) -> Engine:
        """The catalog engine, checked once to be migrated to the newest schema."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = db.settings_engine(self.settings)
                    try:
                        db.require_current(engine)
                    except (RecsysError, SQLAlchemyError):
                        engine.dispose()
                        raise
                    self._engine = engine
        return self._engine

    def store(self) -> VectorStore:
        """The vector store (readers move to newly published versions on their own)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = IdleStore(open_store(self.settings), self.settings.ui_store_idle_s)
        return self._store.touch()

    # ------------------------------------------------------------------ models

    def _continuation_key(self) -> tuple[Any, ...]:
        now = time.monotonic()
        held = self._versions
        if held is None or now - held[0] > VERSIONS_TTL_S:
            key = tuple(sorted(continuation_versions(self.engine()).items()))
            self._versions = held = (now, key)
        return held[1]

    def continuation(self) -> ContinuationService:
        """The continuation service over the newest models; a 503 ``not_ready`` when it cannot be built."""
        try:
            key = self._continuation_key()
            held = self._continuation
            if held is not None and held[0] == key:
                return held[1]
            with self._lock:
                held = self._continuation
                if held is None or held[0] != key:
                    started = time.perf_counter()
                    unsettle_heap()  # the service replaced may hold cycles: let the collector see them again
                    service = serving_service(
                        self.engine(), data_dir=self.settings.data_dir, device=self.settings.device
                    )
                    self._continuation = held = (key, service)
                    settle_heap()
                    log.info("continuation service built in %.1f s", time.perf_counter() - started)
                return held[1]
        except (RecsysError, SQLAlchemyError) as exc:
            raise not_ready(exc) from None

    def bundle_path(self) -> Path:
        return model_file(self.settings.data_dir)

    def scorer(self) -> VideoScorer:
        """The video–music scorer of the trained bundle; a 503 ``not_ready`` when there is none."""
        path = self.bundle_path()
        try:
            stamp = path.stat().st_mtime_ns if path.is_file() else 0
            store = self.store()
            held = self._scorer
            if held is not None and held[0] == stamp:
                return held[1]
            with self._lock:
                held = self._scorer
                if held is None or held[0] != stamp:
                    unsettle_heap()
                    scorer = VideoScorer(
                        load_bundle(path),
                        store,
                        device=self.settings.device,
                        frame_precision=self.settings.video_precision,
                    )
                    self._scorer = held = (stamp, scorer)
                    settle_heap()
                return held[1]
        except (RecsysError, SQLAlchemyError) as exc:
            raise not_ready(exc) from None

    def loaded(self) -> dict[str, Any]:
        """What is built now, without building anything: for the readiness answer."""
        service = self._continuation[1] if self._continuation else None
        scorer = self._scorer[1] if self._scorer else None
        return {
            "continuation": None
            if service is None
            else {"methods": service.methods, "versions": dict(service.versions)},
            "video": None if scorer is None else {"version": scorer.bundle.version},
        }

    def warm(self) -> None:
        """Build what the routes serve from, ahead of the first request; what cannot be built is
        noted in ``problems`` (the readiness answer shows it) and logged."""
        for name, build in (("continuation", self.continuation), ("video", self._warm_scorer)):
            try:
                build()
                self.problems.pop(name, None)
            except ApiError as exc:  # noted for /v1/ready and logged; a request for it gets the same 503
                self.problems[name] = exc.message
                log.warning("%s is not ready: %s", name, exc.message)

    def _warm_scorer(self) -> None:
        if self.bundle_path().is_file():
            self.scorer().text_encoder  # noqa: B018  # loads the text tower too
        else:
            raise not_ready(RecsysError(f"no trained video–music model at {self.bundle_path()}"))

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                close = getattr(self._store.store, "close", None)
                if close is not None:
                    close()
            if self._engine is not None:
                self._engine.dispose()
