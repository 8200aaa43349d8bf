"""``recsys demo``: the main job on embedded defaults, and the UI on its data."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import engine_for, settings, translate_errors
from pipelines.ui_server import check_port
from pipelines.ui_server import serve as serve_ui


@groups.top_app.command("demo")
@translate_errors
def demo(
    playlists: Annotated[int, typer.Option(help="How many demo playlists to generate.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed of the catalog generator.")] = 7,
    audio_clips: Annotated[int, typer.Option(help="Demo audio clips per style (0: skip demo audio).")] = 4,
    video_clips: Annotated[
        int, typer.Option(help="Synthetic video–music clips (0: skip the video model).")
    ] = 300,
    video_epochs: Annotated[int, typer.Option(help="Training epochs of the video–music model.")] = 30,
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the UI on the demo data.")] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="With --serve: port to listen on.")] = 8501,
) -> None:
    """The main job on embedded defaults: generate demo data, ingest, embed, train, print the catalog statistics."""
    # deferred: scipy, polars, numpy
    from pipelines.demo.catalog import DemoConfig
    from pipelines.demo.job import DemoPlan, run_demo

    cfg = settings()
    plan = DemoPlan(
        catalog=DemoConfig(playlists=playlists, seed=seed),
        audio_clips_per_style=audio_clips,
        video_clips=video_clips,
        video_epochs=video_epochs,
    )
    if serve:
        check_port(host, port)  # before minutes of work, not after
    run_demo(cfg, engine_for(cfg, migrate=True), plan, echo=typer.echo)
    if serve:
        raise typer.Exit(serve_ui(cfg, host=host, port=port, echo=typer.echo))
