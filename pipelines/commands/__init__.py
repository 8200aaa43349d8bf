"""Command modules of the ``recsys`` CLI, one per area.

Each module defines ``register(app, ingest_app)`` that adds its commands (or a
sub-application) to the root app or to ``recsys ingest``; list it in REGISTRY.
Shared groups (``train``, ``embed``, ``models``, ``recommend``, ``evaluate``) live in ``groups``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.commands import (
    audio,
    index,
    ingest_files,
    ingest_spotify,
    models_cf,
    playlist_encoder,
    ui,
    video,
)

REGISTRY: list[Callable[..., Any]] = [
    ingest_spotify.register,
    ingest_files.register,
    index.register,
    models_cf.register,
    playlist_encoder.register,
    audio.register,
    video.register,
    ui.register,
]
