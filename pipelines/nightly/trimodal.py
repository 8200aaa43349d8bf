"""The video–text–music model, when due: retrain it on the pipeline's video folder and publish
it only if it is not worse than the serving one (``recsys train trimodal``, then the gate).

- The candidate is trained into ``<data dir>/trimodal/candidate/`` (its bundle and its
  features), never over the serving bundle, with the options of the file's
  ``[trimodal]`` section. Its clip features are cached where ``recsys train trimodal``
  caches them, so the clips of last week are not decoded again.
- Both models are then scored on the same held-out clips: the candidate's test split
  (a hash of each clip's name, so a clip is held out in every run and was held out of
  every model trained on the folder), with the retrieval measures of the training
  report (:func:`recsys.evaluation.retrieval.retrieval_metrics`: the true soundtrack
  among the held-out clips' soundtracks). The serving model takes the candidate's
  features when its encoders are the candidate's; otherwise the same clips are
  extracted with its own encoders, and only the clips both extractions hold count.
- The candidate is published when ``trimodal.metric`` of the ``trimodal.query`` mode
  is at most ``gate.tolerance`` below the serving model's (or nothing serves yet): its
  features file and then its bundle replace the serving ones (each an atomic rename;
  the bundle, last, is what the scorer and ``embed-music`` read), and its version is
  recorded as kind ``trimodal``. Otherwise the serving bundle stays, byte for byte, and
  the step's metrics say why. ``embed-music`` runs after this step, and a new bundle
  makes it due the same night whatever its cadence.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines.nightly.gate import decide
from pipelines.nightly.steps import Context, Outcome, Step, digest, file_listing
from recsys.catalog.model_versions import record_model_version
from recsys.errors import ConfigError, InputError
from recsys.evaluation.retrieval import MODES, retrieval_metrics
from recsys.models.trimodal_batches import Features, load_features
from recsys.models.trimodal_bundle import MODEL_KIND, Bundle, FeatureSpec, load_bundle, model_file

CANDIDATES = 100  # soundtracks each held-out clip's own is ranked among (fewer clips: all of them)
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}  # what `recsys train trimodal` reads


def serving_file(ctx: Context) -> Path:
    """The serving bundle (what ``recsys train trimodal`` writes and the scorer reads)."""
    return model_file(ctx.settings.data_dir)


def candidate_file(ctx: Context) -> Path:
    return serving_file(ctx).parent / "candidate" / "model.pt"


def features_file(bundle: Path) -> Path:
    """The train and test features written beside a bundle."""
    return bundle.with_name("features.npz")


def _spec(ctx: Context) -> FeatureSpec:
    section = ctx.config.trimodal
    return FeatureSpec(frame_encoder=section.frames, clip_model=section.clip_model)


def _cache(ctx: Context, spec: FeatureSpec) -> Path:
    return serving_file(ctx).parent / "cache" / spec.key()


def _idle(ctx: Context) -> str | None:
    section = ctx.config.trimodal
    if not section.enabled or section.videos is None:
        return "the video–music model is not in the pipeline"
    if not section.videos.is_dir():
        return f"no video folder at {section.videos}"
    if not any(p.suffix.lower() in VIDEO_SUFFIXES for p in section.videos.rglob("*") if p.is_file()):
        return f"no videos in {section.videos}"
    return None


def _options(ctx: Context) -> dict[str, Any]:
    return ctx.config.trimodal.model_dump(mode="json", exclude={"enabled", "cadence", "videos"})


def _fingerprint(ctx: Context) -> str:
    section = ctx.config.trimodal
    assert section.videos is not None  # the step is idle without it
    described = None if section.descriptions is None else file_listing(section.descriptions)
    listing = file_listing(section.videos)
    videos = [
        (Path(name).relative_to(section.videos).as_posix(), size, mtime) for name, size, mtime in listing
    ]
    return digest(videos, described, _options(ctx), ctx.config.gate.tolerance)


def _train(ctx: Context, spec: FeatureSpec) -> Any:
    # deferred: torch, lightning (ml extra)
    from pipelines.train.trimodal import TrainSettings, run_training

    section = ctx.config.trimodal
    assert section.videos is not None
    report = run_training(
        section.videos,
        candidate_file(ctx),
        spec=spec,
        descriptions_file=section.descriptions,
        settings=TrainSettings(epochs=section.epochs, device=ctx.settings.device),
        config_overrides={"text_dropout": section.text_dropout},
        cache=_cache(ctx, spec),
    )
    if report is None:  # a rank other than 0 of a multi-process run: nightly trains in one process
        raise ConfigError("recsys nightly runs in one process: unset RANK, NODE_RANK and LOCAL_RANK")
    return report


def _flat(retrieval: dict[str, Any]) -> dict[str, float]:
    """``{"video+text recall@10": 0.42, ...}`` of a retrieval report."""
    return {f"{mode} {name}": value for mode in MODES for name, value in retrieval[mode].items()}


def _serving_features(
    ctx: Context, serving: Bundle, spec: FeatureSpec, test: Features
) -> tuple[Features, str]:
    """The held-out clips as the serving model reads them, and on what basis."""
    if serving.spec == spec:
        return test, "the candidate's features"
    # deferred: torch, transformers, PyAV (ml and video extras)
    from pipelines.train.trimodal import extract, make_encoders

    section = ctx.config.trimodal
    assert section.videos is not None
    descriptions = dict(zip(test.ids, test.descriptions, strict=True))
    extracted = extract(
        section.videos,
        serving.spec,
        make_encoders(serving.spec, ctx.settings.device),
        cache=_cache(ctx, serving.spec),
        descriptions=descriptions,
    ).features
    rows = {name: i for i, name in enumerate(extracted.ids)}
    return extracted.subset([rows[name] for name in test.ids if name in rows]), "its own encoders' features"


def _common(test: Features, other: Features) -> Features:
    """The rows of ``test`` whose clips ``other`` holds too, in ``other``'s order."""
    rows = {name: i for i, name in enumerate(test.ids)}
    return test.subset([rows[name] for name in other.ids])


def evaluate(ctx: Context, spec: FeatureSpec, candidate: Bundle, serving: Bundle | None) -> dict[str, Any]:
    """Both models' retrieval measures on the candidate's held-out clips, in the shape :func:`decide` reads."""
    section = ctx.config.trimodal
    _, test = load_features(features_file(candidate_file(ctx)))
    theirs, basis = (test, None) if serving is None else _serving_features(ctx, serving, spec, test)
    test = _common(test, theirs)
    if len(test) < 2:
        raise InputError(f"{section.videos}: {len(test)} held-out clips: the gate needs at least 2")
    pool = min(CANDIDATES, len(test))
    metric = f"{section.query} {section.metric}"
    scored = _flat(retrieval_metrics(candidate.model, test, pool))
    if metric not in scored:
        raise InputError(
            f"{section.videos}: {len(test)} held-out clips are too few for trimodal.metric "
            f"{section.metric!r}: choose a smaller k or add videos"
        )
    served = None if serving is None else _flat(retrieval_metrics(serving.model, theirs, pool))
    return {
        "metric": metric,
        "tolerance": ctx.config.gate.tolerance,
        "held_out": len(test),
        "candidates": pool,
        "candidate_version": candidate.version,
        "candidate": scored,
        "serving_version": None if serving is None else serving.version,
        "serving": served,
        "serving_basis": basis,
    }


def publish(ctx: Context, candidate: Bundle, evaluation: dict[str, Any]) -> None:
    """Move the candidate's features, then its bundle, over the serving ones; record its version."""
    source, target = candidate_file(ctx), serving_file(ctx)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(features_file(source), features_file(target))
    os.replace(source, target)
    kept = ("metric", "tolerance", "held_out", "candidate", "serving", "serving_version", "serving_basis")
    with ctx.engine.begin() as conn:
        record_model_version(
            conn,
            MODEL_KIND,
            candidate.version,
            path=target,
            params={"spec": asdict(candidate.spec), "options": _options(ctx)},
            metrics={**candidate.metrics, "gate": {k: evaluation[k] for k in kept}},
            refresh=("path", "metrics"),
        )


def _run(ctx: Context) -> Outcome:
    spec = _spec(ctx)
    report = _train(ctx, spec)
    for line in report.skipped:
        ctx.echo(f"skipped: {line}")
    candidate = load_bundle(candidate_file(ctx))
    serving = load_bundle(serving_file(ctx)) if serving_file(ctx).is_file() else None
    evaluation = evaluate(ctx, spec, candidate, serving)
    published, reason = decide(evaluation)
    verdict = "published: " if published else "not published: "
    ctx.echo(f"trimodal candidate {candidate.version}: {verdict}{reason}")
    if published:
        publish(ctx, candidate, evaluation)
    counts = {
        "clips": report.clips,
        "train": report.train,
        "held_out": evaluation["held_out"],
        "skipped": len(report.skipped),
        "published": int(published),
        "refused": int(not published),
    }
    metrics = {
        **evaluation,
        "published": published,
        "reason": reason,
        "seconds": report.seconds,
        "skipped_clips": report.skipped[:20],
    }
    return Outcome(counts=counts, metrics=metrics)


TRAIN_TRIMODAL = Step("train-trimodal", lambda c: c.trimodal.cadence, _idle, _fingerprint, _run)
