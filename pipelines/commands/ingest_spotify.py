"""``recsys ingest spotify``: playlists, albums, tracks, artists and the user's library from the Web API."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.commands.support import engine_for, finish_ingest, settings, translate_errors


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    ingest_app.command("spotify")(ingest_spotify)


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
