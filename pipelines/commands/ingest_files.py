"""``recsys ingest table``, ``recsys ingest listens`` and ``recsys ingest audio-dir``: files into the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands.support import engine_for, finish_ingest, settings, translate_errors

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
PrefixOption = Annotated[
    str,
    typer.Option(
        "--id-prefix", help="Prefix of the source keys made from non-Spotify ids (tracks, playlists, users)."
    ),
]


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @ingest_app.command("table")
    @translate_errors
    def ingest_table(
        paths: Annotated[list[Path], typer.Argument(help="CSV, TSV or Parquet files.")],
        kind: Annotated[str, typer.Option("--kind", help="What a row is: tracks, playlists or listens.")],
        id_prefix: PrefixOption = "table",
        namespace: Annotated[
            str, typer.Option("--namespace", help="Playlist namespace (kind playlists).")
        ] = "catalog",
        as_json: JsonOption = False,
    ) -> None:
        """Ingest tables of tracks, playlist entries or listens (see the column mapping in the README)."""
        from pipelines.ingest.guards import InputLimits
        from pipelines.ingest.report import Progress
        from pipelines.ingest.tables import ingest_table as run

        cfg = settings()
        report = run(
            engine_for(cfg),
            paths,
            kind=kind,
            id_prefix=id_prefix,
            namespace=namespace,
            batch_rows=cfg.batch_rows,
            progress=Progress.auto(),
            limits=InputLimits.from_settings(cfg),
        )
        finish_ingest(report, as_json)

    @ingest_app.command("listens")
    @translate_errors
    def ingest_listens(
        paths: Annotated[list[Path], typer.Argument(help="Listening-history files (or the HetRec folder).")],
        fmt: Annotated[str, typer.Option("--format", help="lastfm-2k, lastfm-1k or csv.")],
        id_prefix: PrefixOption = "table",
        as_json: JsonOption = False,
    ) -> None:
        """Ingest listening histories: HetRec Last.fm 2k, Last.fm 1K logs or CSV tables."""
        from pipelines.ingest.guards import InputLimits
        from pipelines.ingest.listens import ingest_listens as run
        from pipelines.ingest.report import Progress

        cfg = settings()
        report = run(
            engine_for(cfg),
            paths,
            fmt=fmt,
            id_prefix=id_prefix,
            batch_rows=cfg.batch_rows,
            progress=Progress.auto(),
            limits=InputLimits.from_settings(cfg),
        )
        finish_ingest(report, as_json)

    @ingest_app.command("audio-dir")
    @translate_errors
    def ingest_audio_dir(
        path: Annotated[
            Path, typer.Argument(help="A folder of audio files (searched recursively) or one file.")
        ],
        as_json: JsonOption = False,
    ) -> None:
        """Ingest audio files: checksum, measure, read tags, link each to a track or create one."""
        from pipelines.ingest.audio_dir import ingest_audio_dir as run
        from pipelines.ingest.guards import InputLimits
        from pipelines.ingest.report import Progress

        cfg = settings()
        report = run(engine_for(cfg), path, progress=Progress.auto(), limits=InputLimits.from_settings(cfg))
        finish_ingest(report, as_json)
