"""``recsys ingest``: MPD slices, the Spotify Web API, tables, listening histories and audio files into the catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands import groups
from pipelines.commands.support import engine_for, finish_ingest, settings, translate_errors

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
PrefixOption = Annotated[
    str,
    typer.Option(
        "--id-prefix", help="Prefix of the source keys made from non-Spotify ids (tracks, playlists, users)."
    ),
]


def _load(
    run: Callable[..., Any], inputs: Any, as_json: bool, *, batched: bool = True, **options: Any
) -> None:
    """Run an ingest job on its inputs with this run's settings (batch size, progress bars, input
    limits) and print its report; ``batched`` jobs read their inputs ``batch_rows`` rows at a time."""
    # deferred: polars, psycopg, numpy
    from pipelines.ingest.guards import InputLimits
    from pipelines.ingest.report import Progress

    cfg = settings()
    if batched:
        options["batch_rows"] = cfg.batch_rows
    report = run(
        engine_for(cfg), inputs, progress=Progress.auto(), limits=InputLimits.from_settings(cfg), **options
    )
    finish_ingest(report, as_json)


@groups.ingest_app.command("mpd")
@translate_errors
def ingest_mpd(
    paths: Annotated[
        list[Path], typer.Argument(help="MPD slice files (.json, .json.gz), directories or .zip archives.")
    ],
    namespace: Annotated[
        str, typer.Option(help="Playlist namespace (held-out test sets use their own).")
    ] = "catalog",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    defer_indexes: Annotated[
        bool | None,
        typer.Option(
            "--defer-indexes/--keep-indexes",
            help="Set secondary indexes and foreign keys aside during the load and rebuild them at its end "
            "(default: only for a load of about a million entries or more).",
        ),
    ] = None,
) -> None:
    """Ingest Million Playlist Dataset slices (full or trimmed schema)."""
    # deferred: pyarrow, polars, psycopg
    from pipelines.ingest.mpd import ingest_mpd as run

    _load(run, paths, as_json, namespace=namespace, defer_indexes=defer_indexes)


@groups.ingest_app.command("spotify")
@translate_errors
def ingest_spotify(
    playlist: Annotated[
        list[str] | None,
        typer.Option(
            "--playlist", help="A playlist id, spotify:playlist: URI or open.spotify.com URL (repeatable)."
        ),
    ] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="The current user's playlists (needs a user token).")
    ] = False,
    album: Annotated[
        list[str] | None, typer.Option("--album", help="An album id, URI or URL (repeatable).")
    ] = None,
    track: Annotated[
        list[str] | None, typer.Option("--track", help="A track id, URI or URL (repeatable).")
    ] = None,
    artist: Annotated[
        list[str] | None,
        typer.Option("--artist", help="An artist id, URI or URL, with its top tracks (repeatable)."),
    ] = None,
    saved: Annotated[
        bool, typer.Option("--saved", help="The current user's saved tracks (needs a user token).")
    ] = False,
    namespace: Annotated[str, typer.Option(help="Playlist namespace.")] = "catalog",
    max_wait: Annotated[
        float,
        typer.Option(help="Longest rate-limit wait (Retry-After, seconds) to sit out before giving up."),
    ] = 60.0,
    retries: Annotated[int, typer.Option(help="Retries per request on 429 and 5xx answers.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Ingest playlists, albums, tracks and artists from the Spotify Web API (through spotipy)."""
    # deferred: spotipy, polars, psycopg
    from pipelines.ingest.guards import InputLimits
    from pipelines.ingest.report import Progress
    from pipelines.ingest.spotify import SpotifyInputs
    from pipelines.ingest.spotify import ingest_spotify as run
    from pipelines.ingest.spotify_client import RetryPolicy, SpotifyApi, invalid_retry_after_note

    cfg = settings()
    inputs = SpotifyInputs(
        playlists=playlist or [],
        albums=album or [],
        tracks=track or [],
        artists=artist or [],
        mine=mine,
        saved=saved,
    )
    inputs.require_any()  # before the database and credentials are checked
    engine = engine_for(cfg)
    api = SpotifyApi(cfg, RetryPolicy(max_retries=retries, max_wait_s=max_wait))
    report = run(
        engine,
        api,
        inputs,
        namespace=namespace,
        progress=Progress.auto(),
        limits=InputLimits.from_settings(cfg),
    )
    if api.policy.waits:
        report.messages.append(
            f"spotify: rate limited {len(api.policy.waits)} time(s), waited {sum(api.policy.waits):.0f} s in all"
        )
    note = invalid_retry_after_note(api.policy)
    if note:
        report.messages.append(note)
    finish_ingest(report, as_json)


@groups.ingest_app.command("table")
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
    # deferred: pyarrow, polars, psycopg
    from pipelines.ingest.tables import ingest_table as run

    _load(run, paths, as_json, kind=kind, id_prefix=id_prefix, namespace=namespace)


@groups.ingest_app.command("listens")
@translate_errors
def ingest_listens(
    paths: Annotated[list[Path], typer.Argument(help="Listening-history files (or the HetRec folder).")],
    fmt: Annotated[str, typer.Option("--format", help="lastfm-2k, lastfm-1k or csv.")],
    id_prefix: PrefixOption = "table",
    as_json: JsonOption = False,
) -> None:
    """Ingest listening histories: HetRec Last.fm 2k, Last.fm 1K logs or CSV tables."""
    # deferred: pyarrow, polars, psycopg
    from pipelines.ingest.listens import ingest_listens as run

    _load(run, paths, as_json, fmt=fmt, id_prefix=id_prefix)


@groups.ingest_app.command("audio-dir")
@translate_errors
def ingest_audio_dir(
    path: Annotated[Path, typer.Argument(help="A folder of audio files (searched recursively) or one file.")],
    as_json: JsonOption = False,
) -> None:
    """Ingest audio files: checksum, measure, read tags, link each to a track or create one."""
    # deferred: polars, psycopg, numpy
    from pipelines.ingest.audio_dir import ingest_audio_dir as run

    _load(run, path, as_json, batched=False)
