"""Audio commands: ``recsys embed audio``, ``recsys models merge`` and ``recsys recommend similar``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import (
    ExecutorOption,
    RayActorsOption,
    RayAddressOption,
    echo_json,
    engine_for,
    executor_for,
    settings,
    translate_errors,
)
from pipelines.embed.encoders import Encoder, build_audio_embedder
from recsys.embedders.checkpoints import DEFAULT_REVISION
from recsys.embedders.merge import merge_checkpoints


@groups.embed_app.command("audio")
@translate_errors
def embed_audio(
    encoder: Annotated[
        Encoder, typer.Option(help="culturemert (model weights) or dsp (no weights).")
    ] = Encoder.culturemert,
    model: Annotated[
        str | None, typer.Option(help="Checkpoint id or directory (default: RECSYS_AUDIO_MODEL).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Windows per forward pass (culturemert) or files per batch.")
    ] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    ray_actors: RayActorsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Embed every track whose audio has no vector from the current encoder version (incremental, resumable)."""
    # deferred: soundfile, polars, psycopg
    from pipelines.embed.audio import embed_audio as run
    from pipelines.ingest.report import Progress
    from recsys.vectorstore import open_store

    cfg = settings()
    engine = engine_for(cfg)
    chosen = executor_for(cfg, executor, ray_address, ray_actors)
    embedder = build_audio_embedder(cfg, encoder, model=model, batch_size=batch_size)
    files_per_batch = batch_size or cfg.audio_batch_size
    with open_store(cfg) as store:
        report = run(
            engine,
            store,
            embedder,
            batch_size=files_per_batch,
            max_duration_s=cfg.audio_max_duration_s,
            progress=Progress.auto(),
            executor=chosen,
        )
    if as_json:
        echo_json(report.as_dict())
        return
    for line in report.rejects:
        typer.echo(f"reject: {line}", err=True)
    typer.echo(report.summary())


@groups.embed_app.command("demo-audio")
@translate_errors
def embed_demo_audio(
    clips_per_style: Annotated[int, typer.Option(min=1, help="Clips of each synthetic style.")] = 4,
    seconds: Annotated[float, typer.Option(min=1.0, help="Length of each clip.")] = 6.0,
    encoder: Annotated[Encoder, typer.Option(help="Encoder to embed them with.")] = Encoder.dsp,
    seed: Annotated[int, typer.Option(help="Random seed of the generator.")] = 7,
) -> None:
    """Generate synthetic clips in four styles, add them to the catalog as tracks with audio, and embed them."""
    # deferred: soundfile, polars, psycopg
    from pipelines.demo.audio import DemoAudioConfig, generate_demo_audio, register_demo_audio
    from pipelines.embed.audio import embed_audio as run
    from pipelines.ingest.report import Progress
    from recsys.vectorstore import open_store

    cfg = settings()
    engine = engine_for(cfg, migrate=True)
    out = cfg.ensure_data_dir() / "demo" / "audio"
    clips = generate_demo_audio(
        out, DemoAudioConfig(clips_per_style=clips_per_style, seconds=seconds, seed=seed)
    )
    ids = register_demo_audio(engine, clips)
    typer.echo(f"demo audio: {len(clips)} clip(s) in {out} as tracks {min(ids)}-{max(ids)}")
    embedder = build_audio_embedder(cfg, encoder)
    with open_store(cfg) as store:
        report = run(engine, store, embedder, batch_size=cfg.audio_batch_size, progress=Progress.auto())
    typer.echo(report.summary())


@groups.models_app.command("merge")
@translate_errors
def models_merge(
    base: Annotated[str, typer.Option(help="Base checkpoint: Hugging Face id or directory.")],
    culture: Annotated[
        list[str], typer.Option(help="A single-culture checkpoint (id or directory); repeat for each.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the merged checkpoint.")],
    lam: Annotated[float, typer.Option("--lambda", help="Scale of the summed task vectors.")] = 0.2,
    revision: Annotated[
        str, typer.Option(help="Hub revision for ids: a commit pins the weights; a branch warns.")
    ] = DEFAULT_REVISION,
) -> None:
    """Task arithmetic: base + lambda * sum(culture - base), saved as a loadable checkpoint."""
    result = merge_checkpoints(base, culture, out, lam=lam, revision=revision)
    echo_json(
        {
            "out": str(result.out),
            "base": result.base,
            "cultures": result.cultures,
            "lambda": result.lam,
            "tensors": result.tensors,
            "parameters": result.parameters,
        }
    )


@groups.recommend_app.command("similar")
@translate_errors
def recommend_similar(
    track: Annotated[int, typer.Option(help="Catalog id of the track to start from.")],
    by: Annotated[
        str, typer.Option(help="Vector to compare: audio (CultureMERT), audio_dsp, music, cf or seq2seq.")
    ] = "audio",
    culture: Annotated[str | None, typer.Option(help="Keep only tracks tagged with this culture.")] = None,
    n: Annotated[int, typer.Option(min=1, help="How many tracks.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Tracks that sound like a track (nearest neighbours of its audio vector), the track itself excluded."""
    # deferred: numpy
    from recsys.recommend.similar import SIMILARITY_VECTORS, similar_tracks
    from recsys.vectorstore import open_store

    if by not in SIMILARITY_VECTORS:
        raise typer.BadParameter(f"--by must be one of {', '.join(SIMILARITY_VECTORS)}, not {by!r}")
    with open_store(settings()) as store:
        found = similar_tracks(store, track, by=by, culture=culture, n=n)
    if as_json:
        echo_json([t.as_dict() for t in found])
        return
    for t in found:
        tags = ", ".join(t.cultures + t.genres)
        typer.echo(
            f"{t.score:6.3f}  {t.track_id:>8}  {t.artist or '?'} - {t.title or '?'}"
            + (f"  [{tags}]" if tags else "")
        )
