"""The HTTP API: a FastAPI app over the same library calls as the UI (``recsys serve`` runs it).

Routes live under ``/v1`` (the OpenAPI schema at ``/openapi.json``, its pages at ``/docs``):
health and readiness need no key; everything else, ``/metrics`` included, needs one
(see :mod:`recsys.api.access`) unless the app is made with ``auth=False``. Request
bodies are capped (:class:`~recsys.api.limits.BodyLimit`), every request is logged and
counted (:mod:`recsys.api.observe`), and every error is JSON (:mod:`recsys.api.errors`).
CORS is off unless origins are given.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from recsys.api import errors, models
from recsys.api.access import Gate, authorised
from recsys.api.limits import BodyLimit, RateLimiter
from recsys.api.observe import Metrics, Observe
from recsys.api.routes_catalog import router as catalog_router
from recsys.api.routes_recommend import VIDEO_ROUTE
from recsys.api.routes_recommend import router as recommend_router
from recsys.api.services import Services
from recsys.catalog.db import describe
from recsys.config import Settings
from recsys.errors import RecsysError
from recsys.vectorstore.collections import PLAYLISTS, TRACKS

VERSION = "1"
_ERRORS = {
    status: {"model": models.ErrorBody, "description": meaning}
    for status, meaning in (
        (400, "A malformed body or a value the library refused"),
        (401, "A missing, unknown or revoked API key"),
        (404, "An unknown id"),
        (422, "A field missing, of the wrong type or out of range"),
        (429, "Over the key's rate: Retry-After says when to retry"),
        (503, "What the request needs is not ready"),
    )
}


def create_app(
    settings: Settings, *, auth: bool = True, cors_origins: Sequence[str] = (), warm: bool = True
) -> FastAPI:
    """The API over ``settings``' catalog and store. ``auth=False``: no key and no rate limit (a
    local-only server); ``cors_origins``: the browser origins allowed to call it (none by
    default); ``warm``: build the models in a background thread as the server starts."""
    held = Services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=held.warm, name="recsys-api-warm", daemon=True).start()
        yield
        held.close()

    app = FastAPI(
        title="recsys",
        version=VERSION,
        summary="Music recommendation and playlist discovery: the calls the discovery UI makes, for programs.",
        lifespan=lifespan,
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    app.state.services = held
    app.state.gate = Gate(auth=auth, limiter=RateLimiter(settings.api_rate_per_s, settings.api_rate_burst))
    metrics = Metrics()
    errors.install(app)

    open_routes = APIRouter(prefix="/v1", tags=["health"])

    @open_routes.get("/health", response_model=models.Health, summary="The server answers")
    def health() -> models.Health:
        return models.Health(status="ok")

    @open_routes.get(
        "/ready",
        response_model=models.Readiness,
        summary="Database, vector store and models: ready to serve (503 until they are)",
        responses={
            503: {"model": models.Readiness, "description": "Not ready: the body says what is missing"}
        },
    )
    def ready(response: Response) -> models.Readiness:
        report = readiness(held)
        if report.status != "ready":
            response.status_code = 503
        return report

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics of this server process")
    def served_metrics(_key: Annotated[str, Depends(authorised)]) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(open_routes)
    for router in (catalog_router, recommend_router):
        app.include_router(router, dependencies=[Depends(authorised)])

    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(
        BodyLimit,
        body_bytes=settings.api_max_body_kb * 1024,
        upload_bytes=settings.max_upload_bytes,
        uploads=(VIDEO_ROUTE,),
    )
    app.add_middleware(Observe, metrics=metrics)  # outermost: sees every answer
    return app


def readiness(held: Services) -> models.Readiness:
    """What the server can serve now: the database answers, the store opens, the models are loaded."""
    try:
        with held.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        database = models.Check(ok=True, detail=describe(held.engine()))
    except (RecsysError, SQLAlchemyError) as exc:
        database = models.Check(ok=False, detail=errors.from_library(exc).message)
    collections: dict[str, int | None] = {}
    try:
        store = held.store()
        for name in (TRACKS, PLAYLISTS):
            collections[name] = store.current_version(name) if store.has_collection(name) else None
        vector_store = models.Check(ok=True, detail=held.settings.vector_target)
    except RecsysError as exc:
        vector_store = models.Check(ok=False, detail=errors.from_library(exc).message)
    loaded = held.loaded()
    ok = database.ok and vector_store.ok and loaded["continuation"] is not None
    return models.Readiness(
        status="ready" if ok else "not_ready",
        database=database,
        vector_store=vector_store,
        collections=collections,
        continuation=loaded["continuation"],
        video=loaded["video"],
        problems=dict(held.problems),
    )
