"""Command modules of the ``recsys`` CLI, one per area.

Each module defines ``register(app, ingest_app)`` that adds its commands (or a
sub-application) to the root app or to ``recsys ingest``; list it in REGISTRY.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.commands import video

REGISTRY: list[Callable[..., Any]] = [video.register]
