"""``recsys index``: the vector store's collections, their versions and rebuilds."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors


class CollectionName(StrEnum):
    tracks = "tracks"
    playlists = "playlists"


@groups.index_app.command("status")
@translate_errors
def index_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Collections of the vector store with their current version and counts per named vector."""
    # deferred: numpy
    from pipelines.index import index_status as status
    from recsys.vectorstore import open_store

    with open_store(settings()) as store:
        state = status(store)
    if as_json:
        echo_json(state)
        return
    typer.echo(f"vector store: {state['store']} ({state['backend']})")
    if not state["collections"]:
        typer.echo("no collections yet: run `recsys index rebuild --collection tracks`")
    for info in state["collections"]:
        _print_collection(info)


@groups.index_app.command("rebuild")
@translate_errors
def index_rebuild(
    collection: Annotated[CollectionName, typer.Option("--collection", help="Which collection to rebuild.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Write a new version of a collection from the catalog (keeping stored vectors) and switch to it."""
    # deferred: numpy
    from pipelines.index import rebuild_from_catalog
    from recsys.vectorstore import open_store

    cfg = settings()
    engine = engine_for(cfg)
    with open_store(cfg) as store:
        report = rebuild_from_catalog(engine, store, collection.value, batch_size=cfg.vector_batch)
    if as_json:
        echo_json(report.as_dict())
        return
    carried = ", ".join(f"{k} {v:,}" for k, v in sorted(report.carried.items())) or "none"
    typer.echo(
        f"{report.name}: version {report.version} published with {report.points:,} points; "
        f"vectors carried over: {carried}; points dropped: {report.dropped_points:,}"
    )


def _print_collection(info: dict[str, Any]) -> None:
    versions = ", ".join(f"v{v}" for v in info["versions"])
    note = "" if info["counted"] == "live" else f" (counts {info['counted']}: another process holds it open)"
    spread = (
        f", {info['shards']} shard(s) × {info['replicas']} replica(s)"
        if info.get("shards") is not None
        else ""
    )
    typer.echo(
        f"{info['name']}: version v{info['version']} of [{versions}], {info['points']:,} points{spread}{note}"
    )
    for name, vector in info["vectors"].items():
        typer.echo(
            f"  {name:<10} {vector['size']:>5}-d {vector['distance']:<7} {vector['count']:>12,} vectors"
        )
