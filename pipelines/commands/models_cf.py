"""Commands of collaborative filtering and continuation: train, recommend continue, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors
from recsys.errors import InputError, NotFoundError


@groups.train_app.command("als")
@translate_errors
def train_als(
    model: Annotated[str, typer.Option(help="Factorisation: als or bpr.")] = "als",
    factors: Annotated[int, typer.Option(help="Latent factors.")] = 64,
    iterations: Annotated[int, typer.Option(help="Training iterations (epochs for BPR).")] = 15,
    regularization: Annotated[float, typer.Option(help="L2 regularisation.")] = 0.05,
    alpha: Annotated[float, typer.Option(help="ALS confidence of a held track.")] = 10.0,
    learning_rate: Annotated[float, typer.Option(help="BPR learning rate.")] = 0.05,
    weighting: Annotated[str, typer.Option(help="ALS confidence weighting: none or bm25.")] = "none",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to train on.")] = "catalog",
    source: Annotated[
        str, typer.Option(help="playlists (playlist×track) or listens (user×artist from the listen table).")
    ] = "playlists",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit ALS (or BPR) on the playlist×track (or listens) matrix, save it and record its version."""
    # deferred: scipy, pyarrow, polars
    from pipelines.train.als import train_factorization
    from recsys.collaborative.factorization import MFConfig

    cfg = settings()
    config = MFConfig(
        kind=model,  # type: ignore[arg-type]
        factors=factors,
        iterations=iterations,
        regularization=regularization,
        alpha=alpha,
        learning_rate=learning_rate,
        seed=seed,
        device=cfg.device,
        weighting=weighting,
    )
    saved = train_factorization(
        engine_for(cfg), cfg.data_dir / "models", config, namespace=namespace, source=source
    )
    info = {
        "kind": saved.path.parent.name,
        "version": saved.version,
        "path": str(saved.path),
        **saved.metrics,
    }
    if as_json:
        echo_json(info)
    else:
        typer.echo(
            f"{info['kind']} {saved.version}: {info['rows']:,} rows × {info['items']:,} items "
            f"in {info['fit_seconds']:.1f} s → {saved.path}"
        )


@groups.recommend_app.command("continue")
@translate_errors
def recommend_continue(
    playlist: Annotated[
        str | None,
        typer.Option(help="Continue this catalog playlist (numeric id or source key such as mpd:12)."),
    ] = None,
    tracks: Annotated[
        list[str] | None,
        typer.Option(help="Seed track (Spotify URI, source key or id); repeat it or separate with commas."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Playlist title (alone: cold start).")] = None,
    n: Annotated[int, typer.Option(help="How many tracks.")] = 500,
    artist_cap: Annotated[int | None, typer.Option(help="At most this many tracks per artist.")] = None,
    model: Annotated[str, typer.Option(help="Which saved factorisation to use: als or bpr.")] = "als",
    method: Annotated[
        str,
        typer.Option(
            help="hybrid (the ranker when one is trained, else every source fused), ranker, fusion, "
            "or one source alone: als (the saved model, ALS or BPR), knn, playlist_knn, title, popularity, "
            "artist_knn, seed_artists, seq2seq (when a trained encoder's playlist vectors exist)."
        ),
    ] = "hybrid",
    user: Annotated[
        str | None,
        typer.Option(help="Apply this listener's stored likes and dislikes."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Continue a playlist: N ranked tracks, seeds excluded, each with its reason."""
    # deferred: scipy, pyarrow, polars
    from recsys.catalog.feedback import user_feedback
    from recsys.collaborative.store import latest_model
    from recsys.recommend.service import continuation_service, latest_ranker, playlist_seeds, resolve_tracks

    refs = [part for value in tracks or [] for part in value.split(",") if part.strip()]
    if playlist is None and not refs and not title:
        raise InputError("give --playlist ID, --tracks URI… or --title T")
    cfg = settings()
    engine = engine_for(cfg)
    seed_ids: list[int] = []
    if playlist is not None:
        from_playlist = playlist_seeds(engine, playlist)
        seed_ids += from_playlist.track_ids
        title = title or from_playlist.title
    if refs:
        resolved = resolve_tracks(engine, refs)
        for ref in resolved.unknown:
            typer.echo(f"warning: {ref}: no such track in the catalog, left out of the seeds", err=True)
        if not resolved.track_ids and not title and playlist is None:
            raise InputError("none of the seed tracks is in the catalog")
        seed_ids += resolved.track_ids
    feedback: dict[int, int] = {}
    if user is not None:
        feedback = user_feedback(engine, user=user)
        if not feedback:
            typer.echo(f"warning: no feedback stored for user {user.strip()!r}", err=True)
    alone = method.strip().lower() not in ("hybrid", "fusion", "ranker")
    try:
        saved = latest_model(engine, model)
    except NotFoundError:
        if not alone or method.strip().lower() == "als":
            raise
        saved = None  # a source that needs no saved model was asked for
    service = continuation_service(
        engine,
        saved,
        artist_cap=artist_cap,
        # the seq2seq source loads torch and its encoder: only for a request of one source
        data_dir=cfg.data_dir if alone else None,
        ranker=latest_ranker(engine),
    )
    recs = service.recommend(seed_ids, title, n, method=method, feedback=feedback)
    if not recs:
        typer.echo(
            f"warning: the {method.strip().lower()} method proposes nothing for this request", err=True
        )
    if as_json:
        echo_json(
            [
                {
                    "rank": i,
                    "track_id": r.track_id,
                    "title": info.title if (info := service.tracks.get(r.track_id)) else None,
                    "artist": info.artist_name if info else None,
                    "score": round(r.score, 6),
                    "sources": list(r.sources),
                    "because": list(r.because),
                    "reason": r.reason,
                    "ranked_lower_near": None if r.penalty is None else r.penalty.disliked,
                }
                for i, r in enumerate(recs, start=1)
            ]
        )
        return
    for i, r in enumerate(recs, start=1):
        typer.echo(f"{i:>4}. {service.tracks.label(r.track_id)}  [{r.reason}]")


@groups.evaluate_app.command("continuation")
@translate_errors
def evaluate_continuation(
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: popularity, knn, als, bpr, title, artist_knn, seed_artists, "
            "hybrid or fusion (the fused sources), ranker (the learned ranker)."
        ),
    ] = "popularity,knn,als,bpr,hybrid",
    test_playlists: Annotated[
        int | None, typer.Option(help="Held-out playlists (default 500; with --test-source: all of them).")
    ] = None,
    test_source: Annotated[
        list[Path] | None,
        typer.Option(
            help="MPD files or folders whose playlists are the tests (own namespace, never trained on)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    n: Annotated[int, typer.Option(help="Recommendations per playlist.")] = 500,
    namespace: Annotated[str, typer.Option(help="Training playlist namespace.")] = "catalog",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the report as Markdown here.")] = None,
    validation: Annotated[
        int,
        typer.Option(help="Training playlists carved out to fit the ranker on, per fold (never test ones)."),
    ] = 400,
    folds: Annotated[
        int,
        typer.Option(help="Disjoint validation sets for the ranker, each with sources fitted without it."),
    ] = 8,
    views: Annotated[
        int,
        typer.Option(
            help="Seed categories each of the ranker's validation playlists is shown in (1: its own only)."
        ),
    ] = 1,
    factors: Annotated[int, typer.Option(help="ALS factors (every method that uses ALS).")] = 64,
    alpha: Annotated[float, typer.Option(help="ALS confidence of a held track.")] = 10.0,
    weighting: Annotated[str, typer.Option(help="ALS confidence weighting: none or bm25.")] = "none",
    ablation: Annotated[
        bool,
        typer.Option(help="Also score the ranker without the artist sources and without each feature group."),
    ] = False,
) -> None:
    """Score continuation methods per RecSys Challenge seed category and overall."""
    # deferred: scipy, pyarrow, polars
    from pipelines.evaluate.continuation import evaluate_continuation as run
    from recsys.collaborative.factorization import MFConfig
    from recsys.evaluation.continuation import MethodsConfig
    from recsys.evaluation.reports import continuation_markdown, write_report

    cfg = settings()
    report = run(
        engine_for(cfg),
        methods=methods,
        test_playlists=test_playlists if test_playlists is not None else (None if test_source else 500),
        test_source=test_source,
        namespace=namespace,
        seed=seed,
        n=n,
        batch_rows=cfg.batch_rows,
        config=MethodsConfig(
            als=MFConfig(kind="als", factors=factors, iterations=15, alpha=alpha, weighting=weighting),
            validation=validation,
            folds=folds,
            views=views,
        ),
        ablation=ablation,
    )
    write_report(report, json_out, markdown)
    typer.echo(continuation_markdown(report))


@groups.evaluate_app.command("listens")
@translate_errors
def evaluate_listens(
    path: Annotated[
        Path | None,
        typer.Option(help="HetRec Last.fm folder (user_artists.dat); default: the catalog's listen table."),
    ] = None,
    methods: Annotated[
        str, typer.Option(help="Comma-separated: popularity, knn, als, bpr.")
    ] = "popularity,knn,als,bpr",
    holdout: Annotated[float, typer.Option(help="Share of each user's items held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the report as Markdown here.")] = None,
) -> None:
    """Precision@10, NDCG@10 and recall@50 on held-out user–artist listens."""
    # deferred: scipy, pyarrow, polars
    from recsys.evaluation.listens import evaluate_listens as run
    from recsys.evaluation.listens import listens_from_catalog, read_hetrec_user_artists
    from recsys.evaluation.reports import listens_markdown, write_report

    if path is not None:
        listens = read_hetrec_user_artists(path)
        for problem in listens.problems:
            typer.echo(f"warning: {problem}; line left out", err=True)
    else:
        listens = listens_from_catalog(engine_for(settings()))
    report = run(listens, methods=methods, holdout=holdout, seed=seed)
    write_report(report, json_out, markdown)
    typer.echo(listens_markdown(report))
