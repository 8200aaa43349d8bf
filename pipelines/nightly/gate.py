"""Refit ALS, evaluate it against the serving model, publish it only if it is not worse.

- **train-als** fits a candidate on the catalog's playlists without the validation
  playlists and records it as kind ``als-candidate`` (never loaded by a service).
- **evaluate** scores the candidate and the serving ``als`` model on the fixed
  validation split: playlists carved from the catalog once, on the first refit, and
  kept in ``<data dir>/nightly/validation.json`` (a playlist that left the catalog
  leaves the split). They are never in a candidate's training matrix. A serving model
  that this pipeline published was fitted without them too and is scored as it serves;
  one trained elsewhere (``recsys train als``) has seen them, so its settings are
  refitted without them and that refit is scored in its place.
- **publish** records the candidate as the serving ``als`` model when its metric is at
  most the gate's tolerance below the serving one's (or nothing serves yet); otherwise
  the serving model stays and the step's metrics say why.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from pipelines.nightly.steps import Context, Outcome, Step, digest, holds_any, serving_version
from recsys.catalog import runs
from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import IngestBatch, ModelVersion, Playlist, PlaylistTrack
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import ItemMap, playlist_matrix
from recsys.collaborative.store import SavedModel, latest_model, save_model
from recsys.errors import InputError, NotFoundError
from recsys.evaluation.continuation import score_methods
from recsys.evaluation.splits import challenge_split
from recsys.recommend.candidates import ScorerSource
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable

JOB = runs.NIGHTLY
SERVING = "als"
CANDIDATE = "als-candidate"
MIN_PLAYLISTS = 20  # fewer in the catalog: no split can be carved
METRICS = ("r_precision", "ndcg", "clicks")


@dataclass(frozen=True)
class Split:
    playlist_ids: list[int]
    seed: int

    @property
    def key(self) -> str:
        return digest(self.playlist_ids, self.seed)[:16]


def validation_split(ctx: Context) -> Split:
    """The fixed validation split, carved now if there is none yet."""
    path = ctx.settings.data_dir / "nightly" / "validation.json"
    if path.is_file():
        data = json.loads(path.read_text())
        with ctx.engine.connect() as conn:
            present = set(
                conn.execute(sa.select(Playlist.id).where(Playlist.id.in_(data["playlist_ids"]))).scalars()
            )
        return Split([i for i in data["playlist_ids"] if i in present], int(data["seed"]))
    wanted = ctx.config.validation
    playlists = playlists_frame(ctx.engine).get_column("playlist_id").sort().to_list()
    if len(playlists) < MIN_PLAYLISTS:
        raise InputError(
            f"the catalog holds {len(playlists)} playlists: a validation split needs {MIN_PLAYLISTS}"
        )
    count = min(wanted.playlists, len(playlists) // 5)
    chosen = sorted(random.Random(wanted.seed).sample(playlists, count))
    path.parent.mkdir(parents=True, exist_ok=True)
    carved = {"seed": wanted.seed, "playlist_ids": chosen, "carved_at": datetime.now(UTC).isoformat()}
    path.write_text(json.dumps(carved))
    return Split(chosen, wanted.seed)


def _als_config(ctx: Context) -> MFConfig:
    als = ctx.config.als
    return MFConfig(
        kind="als",
        factors=als.factors,
        iterations=als.iterations,
        regularization=als.regularization,
        alpha=als.alpha,
        seed=als.seed,
        device=ctx.settings.device,
    )


def interactions(ctx: Context) -> list[Any]:
    """What a refit reads, cheaply: entries, playlists (how many, newest) and the ingests done."""
    with ctx.engine.connect() as conn:
        entries = conn.execute(sa.select(sa.func.count()).select_from(PlaylistTrack)).scalar_one()
        lists = conn.execute(sa.select(sa.func.count(), sa.func.max(Playlist.id))).one()
        batches = conn.execute(
            sa.select(sa.func.count(), sa.func.max(IngestBatch.id)).where(IngestBatch.status == "done")
        ).one()
    return [entries, list(lists), list(batches)]


def train_idle(ctx: Context) -> str | None:
    return None if holds_any(ctx, Playlist.id) else "the catalog holds no playlists"


def _train_fingerprint(ctx: Context) -> str:
    als, validation = ctx.config.als.model_dump(mode="json"), ctx.config.validation.model_dump(mode="json")
    return digest(interactions(ctx), als, validation)


def _train_run(ctx: Context) -> Outcome:
    split = validation_split(ctx)
    entries = playlist_entries(ctx.engine)
    matrix = playlist_matrix(entries, exclude=split.playlist_ids)
    model = MatrixFactorization(_als_config(ctx))
    start = time.perf_counter()
    model.fit(matrix)
    seconds = round(time.perf_counter() - start, 3)
    metrics = {"fit_seconds": seconds, "rows": matrix.shape[0], "items": matrix.shape[1], "split": split.key}
    saved = save_model(ctx.engine, ctx.models_dir, model, matrix, metrics=metrics, kind=CANDIDATE)
    with ctx.engine.begin() as conn:  # the newest candidate, even when this version was fitted before
        conn.execute(
            sa.update(ModelVersion)
            .where(ModelVersion.kind == CANDIDATE, ModelVersion.version == saved.version)
            .values(created_at=datetime.now(UTC))
        )
    ctx.echo(
        f"als candidate {saved.version}: {matrix.shape[0]:,} playlists × {matrix.shape[1]:,} tracks in {seconds:.1f} s"
    )
    counts = {
        "rows": matrix.shape[0],
        "items": matrix.shape[1],
        "nnz": matrix.nnz,
        "held_out": len(split.playlist_ids),
    }
    return Outcome(counts=counts, metrics={"candidate": saved.version, **metrics})


TRAIN_ALS = Step("train-als", lambda c: c.als.cadence, train_idle, _train_fingerprint, _train_run)


# --------------------------------------------------------------------------- evaluate


def _versions(ctx: Context) -> tuple[str | None, str | None]:
    with ctx.engine.connect() as conn:
        return serving_version(conn, CANDIDATE), serving_version(conn, SERVING)


def _decided_idle(ctx: Context) -> str | None:
    candidate, serving = _versions(ctx)
    if candidate is None:
        return "no candidate model"
    if candidate == serving:
        return f"the candidate {candidate} serves already"
    return None


def _evaluate_fingerprint(ctx: Context) -> str:
    candidate, serving = _versions(ctx)
    return digest(candidate, serving, ctx.config.gate.model_dump(mode="json"), ctx.config.validation.n)


def score(ctx: Context, model: MatrixFactorization, items: ItemMap, split: Split) -> dict[str, float]:
    """Mean continuation metrics of one fitted model on the validation split."""
    chosen = pl.col("playlist_id").is_in(sorted(split.playlist_ids))
    entries = playlist_entries(ctx.engine).filter(chosen)
    lists = playlists_frame(ctx.engine).filter(chosen)
    cases = challenge_split(entries, lists, n_test=lists.height, seed=split.seed)
    tracks = TrackTable(tracks_frame(ctx.engine))
    service = ContinuationService([ScorerSource(model, items, label="als")], tracks)
    results = score_methods({"als": service}, cases, tracks.artist, n=ctx.config.validation.n)
    means = {m: round(float(np.mean([r.metrics[m] for r in results])), 6) for m in METRICS}
    return {**means, "cases": len(results)}


def _load(kind: str, ctx: Context) -> SavedModel | None:
    try:
        return latest_model(ctx.engine, kind)
    except NotFoundError:
        return None


def _serving_score(ctx: Context, serving: SavedModel, split: Split) -> tuple[dict[str, float], str]:
    """The serving model's score, and on what basis: as it serves when it was fitted without
    the validation playlists (a model this pipeline published); otherwise its settings refitted
    without them, so that neither side has seen the playlists it is scored on."""
    if serving.metrics.get("split") == split.key:
        return score(ctx, serving.model, serving.items, split), "as served"
    matrix = playlist_matrix(playlist_entries(ctx.engine), exclude=split.playlist_ids)
    reference = MatrixFactorization(serving.model.config)
    reference.fit(matrix)
    basis = "its settings refitted without the validation playlists (it was trained on them)"
    return score(ctx, reference, matrix.items, split), basis


def _figures(scores: dict[str, Any]) -> str:
    """``R-precision 0.232, NDCG 0.559, clicks 5.24`` of a score dict."""
    names = {"r_precision": "R-precision", "ndcg": "NDCG", "clicks": "clicks"}
    return ", ".join(f"{label} {scores[key]:.3f}" for key, label in names.items() if key in scores)


def _evaluate_run(ctx: Context) -> Outcome:
    split = validation_split(ctx)
    candidate = _load(CANDIDATE, ctx)
    if candidate is None:
        raise NotFoundError("no candidate model to evaluate")
    serving = _load(SERVING, ctx)
    served, basis = (None, None) if serving is None else _serving_score(ctx, serving, split)
    metrics: dict[str, Any] = {
        "metric": ctx.config.gate.metric,
        "tolerance": ctx.config.gate.tolerance,
        "split": split.key,
        "candidate_version": candidate.version,
        "candidate": score(ctx, candidate.model, candidate.items, split),
        "serving_version": None if serving is None else serving.version,
        "serving": served,
        "serving_basis": basis,
    }
    ctx.echo(
        f"gate on {len(split.playlist_ids):,} validation playlists: candidate {_figures(metrics['candidate'])}"
        + ("; no model serves yet" if served is None else f"; serving {_figures(served)} ({basis})")
    )
    return Outcome(counts={"validation_playlists": len(split.playlist_ids)}, metrics=metrics)


EVALUATE = Step("evaluate", lambda c: "always", _decided_idle, _evaluate_fingerprint, _evaluate_run)


# --------------------------------------------------------------------------- publish


def _evaluation(ctx: Context) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        last = runs.last_success(conn, JOB, EVALUATE.name)
    candidate, _ = _versions(ctx)
    if last is None or last.metrics.get("candidate_version") != candidate:
        raise NotFoundError(f"the candidate {candidate} has not been evaluated")
    return last.metrics


def _publish_fingerprint(ctx: Context) -> str:
    candidate, serving = _versions(ctx)
    return digest(candidate, serving, _evaluation(ctx))


def decide(evaluation: dict[str, Any]) -> tuple[bool, str]:
    """Whether the gate lets the candidate serve, and why."""
    if evaluation["serving"] is None:
        return True, "no model serves yet"
    metric, tolerance = evaluation["metric"], evaluation["tolerance"]
    new, old = evaluation["candidate"][metric], evaluation["serving"][metric]
    if new >= old - tolerance:
        return True, f"{metric} {new:.4f} against the serving {old:.4f} (tolerance {tolerance:g})"
    return False, (
        f"{metric} {new:.4f} is {old - new:.4f} below the serving model's {old:.4f} "
        f"(tolerance {tolerance:g}): {evaluation['serving_version']} keeps serving"
    )


def _publish_run(ctx: Context) -> Outcome:
    evaluation = _evaluation(ctx)
    published, reason = decide(evaluation)
    ctx.echo(("published: " if published else "not published: ") + reason)
    if published:
        promote(ctx, evaluation)
    metrics = {"published": published, "reason": reason, "candidate_version": evaluation["candidate_version"]}
    return Outcome(counts={"published": int(published), "refused": int(not published)}, metrics=metrics)


def promote(ctx: Context, evaluation: dict[str, Any]) -> None:
    """Record the candidate as the newest serving model (the services load the newest)."""
    version = evaluation["candidate_version"]
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        row = conn.execute(
            sa.select(ModelVersion).where(ModelVersion.kind == CANDIDATE, ModelVersion.version == version)
        ).one()
        kept = ("metric", "candidate", "serving", "serving_version", "serving_basis")
        gate = {"gate": {k: evaluation[k] for k in kept}}
        values = {
            "path": row.path,
            "params": row.params,
            "data_fingerprint": row.data_fingerprint,
            "metrics": {**(row.metrics or {}), **gate},
            "created_at": now,
        }
        updated = conn.execute(
            sa.update(ModelVersion)
            .where(ModelVersion.kind == SERVING, ModelVersion.version == version)
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(ModelVersion).values(kind=SERVING, version=version, **values))


PUBLISH = Step("publish", lambda c: "always", _decided_idle, _publish_fingerprint, _publish_run)
