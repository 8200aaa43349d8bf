"""The groups of the ``recsys`` command, each a Typer app that the area modules add commands to.

``top_app`` holds the commands right under ``recsys`` (``demo``, ``demo-video``,
``score-video``, ``ui``, ``serve``); the others are ``recsys db``, ``catalog``, ``ingest``, ``index``,
``train``, ``embed``, ``models``, ``recommend``, ``evaluate``, ``nightly`` and ``api-key``. An area module adds a
command with ``@groups.<group>_app.command("name")`` at module level; ``pipelines.cli``
imports the area modules and adds these groups to the root app, in the order of ``GROUPS``.
"""

from __future__ import annotations

import typer

top_app = typer.Typer()
db_app = typer.Typer(no_args_is_help=True, help="Catalog database: migrations and status.")
catalog_app = typer.Typer(no_args_is_help=True, help="Inspect the catalog.")
ingest_app = typer.Typer(
    no_args_is_help=True, help="Load catalogs, playlists, audio and listening histories."
)
index_app = typer.Typer(no_args_is_help=True, help="The vector store: collections, versions, rebuilds.")
train_app = typer.Typer(no_args_is_help=True, help="Train models on the catalog.")
embed_app = typer.Typer(no_args_is_help=True, help="Compute and store vectors of tracks and playlists.")
models_app = typer.Typer(no_args_is_help=True, help="Build and combine model checkpoints.")
recommend_app = typer.Typer(
    no_args_is_help=True, help="Recommendations: continue playlists, find similar music."
)
evaluate_app = typer.Typer(no_args_is_help=True, help="Evaluate models and recommenders on held-out data.")
# without a subcommand, `recsys nightly` runs the pipeline (the group's callback)
nightly_app = typer.Typer(
    help="The incremental pipeline: ingest what is new, embed and refit what changed, "
    "publish a model only if it is not worse."
)

api_key_app = typer.Typer(no_args_is_help=True, help="Keys of the HTTP API (`recsys serve`).")

GROUPS = {
    "db": db_app,
    "catalog": catalog_app,
    "ingest": ingest_app,
    "index": index_app,
    "train": train_app,
    "embed": embed_app,
    "models": models_app,
    "recommend": recommend_app,
    "evaluate": evaluate_app,
    "nightly": nightly_app,
    "api-key": api_key_app,
}
