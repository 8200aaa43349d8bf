"""Audio commands: ``recsys embed audio`` and ``recsys models merge``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands.support import echo_json, engine_for, settings, translate_errors
from recsys.config import Settings

embed_app = typer.Typer(no_args_is_help=True, help="Compute vectors for the catalog.")
models_app = typer.Typer(no_args_is_help=True, help="Build and combine model checkpoints.")


class Encoder(StrEnum):
    culturemert = "culturemert"
    dsp = "dsp"


def build_audio_embedder(
    cfg: Settings, encoder: Encoder, *, model: str | None = None, batch_size: int | None = None
) -> Any:
    """The embedder the settings (and command-line overrides) describe."""
    if encoder is Encoder.dsp:
        from recsys.embedders.dsp_audio import DspAudioEmbedder

        return DspAudioEmbedder()
    from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder

    layers, weights = cfg.audio_layers, None
    if "," in layers:
        weights = tuple(float(w) for w in layers.split(","))
        layers = "weights"
    return CultureMertEmbedder(
        CultureMertConfig(
            model=model or cfg.audio_model,
            revision=cfg.audio_model_revision,
            window_s=cfg.audio_window_s,
            hop_s=cfg.audio_hop_s,
            batch_size=batch_size or cfg.audio_batch_size,
            layers=layers,
            layer_weights=weights,
            device=cfg.device,
        )
    )


@embed_app.command("audio")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Embed every track whose audio has no vector from the current encoder version (incremental, resumable)."""
    from pipelines.embed import embed_audio as run
    from pipelines.ingest.report import Progress
    from recsys.vectorstore import open_store

    cfg = settings()
    engine = engine_for(cfg)
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
        )
    if as_json:
        echo_json(report.as_dict())
        return
    for line in report.rejects:
        typer.echo(f"reject: {line}", err=True)
    typer.echo(report.summary())


@models_app.command("merge")
@translate_errors
def models_merge(
    base: Annotated[str, typer.Option(help="Base checkpoint: Hugging Face id or directory.")],
    culture: Annotated[
        list[str], typer.Option(help="A single-culture checkpoint (id or directory); repeat for each.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the merged checkpoint.")],
    lam: Annotated[float, typer.Option("--lambda", help="Scale of the summed task vectors.")] = 0.2,
    revision: Annotated[str, typer.Option(help="Hub revision for ids.")] = "main",
) -> None:
    """Task arithmetic: base + lambda * sum(culture - base), saved as a loadable checkpoint."""
    from recsys.embedders.merge import merge_checkpoints

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


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    app.add_typer(embed_app, name="embed")
    app.add_typer(models_app, name="models")
