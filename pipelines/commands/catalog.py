"""``recsys catalog``: the catalog's counts and its playlists exported as JSPF or M3U."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors
from recsys.errors import InputError


@groups.catalog_app.command("stats")
@translate_errors
def catalog_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the counts.")] = False,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to count.")] = "catalog",
) -> None:
    """Counts of playlists, playlist entries, tracks, artists, albums, listens, rejects and feedback."""
    # deferred: pyarrow, polars, psycopg
    from recsys.catalog.feedback import feedback_counts
    from recsys.catalog.queries import catalog_stats as stats
    from recsys.catalog.queries import reject_reasons

    engine = engine_for(settings())
    with engine.connect() as conn:
        counts = stats(conn, namespace=namespace)
        reasons = reject_reasons(conn, limit=10) if not as_json else []
        opinions = feedback_counts(conn) if not as_json else {}
    if as_json:
        echo_json(counts)
        return
    lines = {k: v for k, v in counts.items() if k != "feedback"}
    lines |= {
        "likes": opinions["likes"],
        "dislikes": opinions["dislikes"],
        "feedback users": opinions["users"],
    }
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        typer.echo(f"{key:<{width}}  {value:>12,}")
    for source, reason, count in reasons:
        typer.echo(f"  reject  {count:>8,}  {source}: {reason}")


@groups.catalog_app.command("export")
@translate_errors
def catalog_export(
    playlist: Annotated[str, typer.Argument(help="Playlist id or source key (mpd:12, saved:…).")],
    fmt: Annotated[str, typer.Option("--format", help="jspf (JSON) or m3u (extended M3U).")] = "jspf",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
) -> None:
    """Export a catalog playlist as JSPF or M3U."""
    # deferred: polars, psycopg
    from recsys.catalog.export import catalog_playlist, export_tracks, to_jspf, to_m3u

    kind = fmt.strip().lower()
    if kind not in ("jspf", "m3u"):
        raise InputError(f"unknown format {fmt!r}: use jspf or m3u")
    engine = engine_for(settings())
    found = catalog_playlist(engine, playlist)
    tracks = export_tracks(engine, found.track_ids)
    if kind == "jspf":
        document = to_jspf(found.name, tracks, creator=found.owner, annotation=found.description)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        text = to_m3u(found.name, tracks)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    typer.echo(f"playlist {found.playlist_id} ({len(tracks)} tracks) → {out}")
