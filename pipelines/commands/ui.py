"""``recsys ui``: the Streamlit discovery UI."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.commands import groups
from pipelines.commands.support import ServedDataDir, served_settings, translate_errors
from pipelines.ui_server import serve


@groups.top_app.command("ui")
@translate_errors
def serve_ui(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8501,
    data_dir: ServedDataDir = None,
) -> None:
    """Serve the discovery UI (browse, continue, similar, words → music, video, evaluation)."""
    cfg = served_settings(data_dir)
    raise typer.Exit(serve(cfg, host=host, port=port, echo=typer.echo))
