"""Command groups shared by several areas: ``recsys train``, ``embed``, ``models``, ``recommend``, ``evaluate``.

Each area adds its commands to these Typer apps (``@groups.train_app.command("…")``) and
calls :func:`attach` from its ``register``; attaching is idempotent, so the order of the
modules in ``REGISTRY`` does not matter.
"""

from __future__ import annotations

import typer

train_app = typer.Typer(no_args_is_help=True, help="Train models on the catalog.")
recommend_app = typer.Typer(
    no_args_is_help=True, help="Recommendations: continue playlists, find similar music."
)
evaluate_app = typer.Typer(no_args_is_help=True, help="Evaluate models and recommenders on held-out data.")
embed_app = typer.Typer(no_args_is_help=True, help="Compute and store vectors of tracks and playlists.")
models_app = typer.Typer(no_args_is_help=True, help="Build and combine model checkpoints.")

GROUPS = {
    "train": train_app,
    "embed": embed_app,
    "models": models_app,
    "recommend": recommend_app,
    "evaluate": evaluate_app,
}


def attach(app: typer.Typer) -> None:
    """Add the shared groups to the root app once."""
    present = {group.name for group in app.registered_groups}
    for name, group in GROUPS.items():
        if name not in present:
            app.add_typer(group, name=name)
