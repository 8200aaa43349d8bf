"""Command modules of the ``recsys`` CLI, one per area (``db``, ``catalog``, ``ingest``, ``index``,
``audio``, ``models_cf``, ``playlist_encoder``, ``video``, ``demo``, ``ui``).

Each defines its commands as module-level functions on a group of :mod:`pipelines.commands.groups`;
``support`` holds what they share (the settings, engines, error translation, JSON output).
"""
