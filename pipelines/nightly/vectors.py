"""The index step: the ``tracks`` collection follows the catalog and the serving ALS model.

When the serving model differs from the one whose ``cf`` vectors the store holds (or
there is no collection yet), a new collection version is built from the catalog with
the model's item factors as ``cf`` vectors, the other vectors carried over, and
readers switch to it at once (:func:`pipelines.index.publish_vectors`). Otherwise only
the difference is written, as one revision of the serving version
(:meth:`~recsys.vectorstore.base.VectorStore.revise`): points for catalog tracks the
store lacks, and removal of points whose track left the catalog; the points already
there are not touched, and readers see the whole revision or none of it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipelines.index import publish_vectors, rebuild_from_catalog, track_payloads
from pipelines.nightly.gate import JOB, SERVING
from pipelines.nightly.steps import Context, Outcome, Step, digest, holds_any, serving_version
from recsys.catalog import runs
from recsys.catalog.schema import Track
from recsys.collaborative.store import latest_model
from recsys.vectorstore.base import Point
from recsys.vectorstore.collections import TRACKS

CF = "cf"


def _idle(ctx: Context) -> str | None:
    return None if holds_any(ctx, Track.id) else "the catalog holds no tracks"


def _fingerprint(ctx: Context) -> str:
    with ctx.engine.connect() as conn:
        tracks = list(conn.execute(sa.select(sa.func.count(), sa.func.max(Track.id))).one())
        serving = serving_version(conn, SERVING)
    return digest(tracks, serving, ctx.settings.vector_target)


def _run(ctx: Context) -> Outcome:
    store = ctx.store
    with ctx.engine.connect() as conn:
        serving = serving_version(conn, SERVING)
        last = runs.last_success(conn, JOB, INDEX.name)
    held = last.metrics.get("cf_model") if last is not None else None
    if not store.has_collection(TRACKS) or (serving is not None and serving != held):
        return _rebuild(ctx, serving)
    return _delta(ctx, held)


def _rebuild(ctx: Context, serving: str | None) -> Outcome:
    if serving is None:
        report = rebuild_from_catalog(ctx.engine, ctx.store, TRACKS, batch_size=ctx.settings.vector_batch)
    else:
        model = latest_model(ctx.engine, SERVING)
        report = publish_vectors(
            ctx.engine,
            ctx.store,
            TRACKS,
            CF,
            model.items.ids,
            model.model.item_factors,
            batch_size=ctx.settings.vector_batch,
        )
    ctx.echo(f"{TRACKS}: version {report.version} built with {report.points:,} points (cf model {serving})")
    counts = {
        "points": report.points,
        "rebuilt": 1,
        "upserted": report.points,
        "deleted": report.dropped_points,
    }
    return Outcome(
        counts=counts, metrics={"cf_model": serving, "version": report.version, "carried": report.carried}
    )


def _delta(ctx: Context, held: str | None) -> Outcome:
    store = ctx.store
    with ctx.engine.connect() as conn:
        catalog = set(conn.execute(sa.select(Track.id)).scalars())
    # One new version: a copy of the serving one with the delta, published when complete.
    # The stored ids are read from the draft itself, so the collection is opened once.
    with store.revise(TRACKS) as draft:
        stored = {int(point) for point in draft.point_ids()}
        new, gone = sorted(catalog - stored), sorted(stored - catalog)
        if new or gone:
            payloads = track_payloads(ctx.engine, new)
            points = [Point(track_id, {}, payloads.get(track_id, {"track_id": track_id})) for track_id in new]
            draft.upsert(points, batch_size=ctx.settings.vector_batch)
            draft.delete(gone)
        else:
            draft.abandon()
    ctx.echo(
        f"{TRACKS}: {len(new):,} point(s) added, {len(gone):,} removed, {len(stored & catalog):,} untouched"
    )
    counts: dict[str, Any] = {
        "points": len(catalog),
        "rebuilt": 0,
        "upserted": len(new),
        "deleted": len(gone),
    }
    return Outcome(counts=counts, metrics={"cf_model": held, "version": store.current_version(TRACKS)})


INDEX = Step("index", lambda c: "always", _idle, _fingerprint, _run)
