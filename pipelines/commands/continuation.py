"""Commands of the learned continuation: train the ranker, write a challenge submission."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors
from recsys.errors import NotFoundError


@groups.train_app.command("ranker")
@translate_errors
def train_ranker(
    validation: Annotated[
        int, typer.Option(help="Playlists carved out of the catalog to fit the ranker on, per fold.")
    ] = 400,
    folds: Annotated[
        int, typer.Option(help="Disjoint validation sets, each with sources fitted without it.")
    ] = 8,
    views: Annotated[
        int, typer.Option(help="Seed categories each validation playlist is shown in (1: its own only).")
    ] = 1,
    factors: Annotated[int, typer.Option(help="ALS factors of the sources it is fitted over.")] = 64,
    alpha: Annotated[float, typer.Option(help="ALS confidence of a held track.")] = 10.0,
    weighting: Annotated[str, typer.Option(help="ALS confidence weighting: none or bm25.")] = "none",
    trees: Annotated[int, typer.Option(help="Boosting rounds.")] = 300,
    pool: Annotated[int, typer.Option(help="Candidates ranked per request.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the validation split and the model.")] = 0,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to train on.")] = "catalog",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit the LightGBM ranker of continuation on validation playlists, save it and record its version."""
    # deferred: scipy, pyarrow, polars, lightgbm
    from pipelines.train.ranker import train_ranker as run
    from recsys.evaluation.continuation import MethodsConfig
    from recsys.recommend.ranker import RankerConfig

    cfg = settings()
    methods = MethodsConfig(validation=validation, folds=folds, views=views)
    als = replace(methods.als, factors=factors, alpha=alpha, weighting=weighting, device=cfg.device)
    methods = replace(methods, als=als)
    trained = run(
        engine_for(cfg),
        cfg.data_dir / "models",
        namespace=namespace,
        methods=methods,
        config=RankerConfig(trees=trees, pool=pool, seed=seed + 7),
        seed=seed,
    )
    info = {"kind": "ranker", "version": trained.ranker.version, "path": str(trained.path), **trained.metrics}
    if as_json:
        echo_json(info)
        return
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(trained.metrics["importances"].items())[:5])
    typer.echo(
        f"ranker {trained.ranker.version}: {trained.metrics['validation_playlists']} validation playlists "
        f"in {trained.metrics['fit_seconds']:.1f} s → {trained.path}; largest gains: {top}"
    )


@groups.recommend_app.command("challenge")
@translate_errors
def recommend_challenge(
    challenge_set: Annotated[Path, typer.Argument(help="The challenge set (JSON, as published).")],
    out: Annotated[Path, typer.Option(help="The submission to write (gzipped CSV).")],
    team: Annotated[str, typer.Option(help="Team name for the team_info line.")] = "recsys",
    email: Annotated[
        str, typer.Option(help="Contact address for the team_info line.")
    ] = "recsys@example.org",
    model: Annotated[str, typer.Option(help="Which saved factorisation to use: als or bpr.")] = "als",
) -> None:
    """Continue every playlist of a challenge set: 500 tracks each, seeds excluded, in the submission format."""
    # deferred: scipy, pyarrow, polars
    from pipelines.challenge import write_challenge_submission
    from recsys.collaborative.store import latest_model
    from recsys.recommend.service import continuation_service, latest_ranker

    cfg = settings()
    engine = engine_for(cfg)
    try:
        saved = latest_model(engine, model)
    except NotFoundError:
        saved = None
        typer.echo(f"warning: no saved {model} model: continuing without it", err=True)
    service = continuation_service(engine, saved, ranker=latest_ranker(engine))
    report = write_challenge_submission(engine, service, challenge_set, out, team=team, email=email)
    by = "the ranker" if service.ranker is not None else "the fusion"
    typer.echo(
        f"{report.playlists} playlists continued by {by} → {report.out}; "
        f"{report.unknown_seeds} seed tracks not in the catalog; {report.padded} completed by popularity"
    )
