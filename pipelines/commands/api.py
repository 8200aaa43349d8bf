"""``recsys serve`` (the HTTP API) and ``recsys api-key create|revoke|list`` (its keys)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import ServedDataDir, engine_for, served_settings, settings, translate_errors
from recsys.catalog.api_keys import create_key, list_keys, revoke_key


@groups.top_app.command("serve")
@translate_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (each holds its own models and rate limits).")
    ] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without keys or rate limits (loopback addresses only).")
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin", help="A browser origin allowed to call the API (repeatable; none by default)."
        ),
    ] = None,
    data_dir: ServedDataDir = None,
) -> None:
    """Serve the HTTP API (everything the UI shows, for programs) until Ctrl+C."""
    # deferred: uvicorn and the app, only when serving
    from pipelines.api_server import serve as serve_api

    cfg = served_settings(data_dir)
    engine_for(cfg).dispose()  # an unreachable or unmigrated catalog: one line, before the server starts
    raise typer.Exit(
        serve_api(
            cfg,
            host=host,
            port=port,
            workers=workers,
            auth=not no_auth,
            cors_origins=cors_origin or (),
            verbose=cfg.log_level == "DEBUG",
            echo=typer.echo,
        )
    )


@groups.api_key_app.command("create")
@translate_errors
def create(
    name: Annotated[str, typer.Argument(help="The key's name (letters, digits, '.', '_', '-').")],
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Its own rate, in requests per second (default: RECSYS_API_RATE_PER_S)."
        ),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(min=1, help="Its own burst, in requests (default: RECSYS_API_RATE_BURST).")
    ] = None,
) -> None:
    """Make an API key and print its secret (shown this once: only its hash is stored)."""
    engine = engine_for(settings())
    try:
        secret = create_key(engine, name, rate_per_s=rate, burst=burst)
    finally:
        engine.dispose()
    typer.echo(secret)
    typer.echo(f"API key {name.strip()!r} made; keep the secret above, it is not shown again", err=True)


@groups.api_key_app.command("revoke")
@translate_errors
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key: requests bearing it are refused from now on."""
    engine = engine_for(settings())
    try:
        revoke_key(engine, name)
    finally:
        engine.dispose()
    typer.echo(f"API key {name.strip()!r} revoked")


@groups.api_key_app.command("list")
@translate_errors
def show() -> None:
    """The API keys: name, made, revoked, own rate (never a secret)."""
    engine = engine_for(settings())
    try:
        keys = list_keys(engine)
    finally:
        engine.dispose()
    if not keys:
        typer.echo("no API keys: make one with `recsys api-key create NAME`")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        limit = f"{key.rate_per_s:g}/s, burst {key.burst or '-'}" if key.rate_per_s else "server's rate"
        typer.echo(f"{key.name}\tmade {key.created_at:%Y-%m-%d %H:%M}\t{state}\t{limit}")
