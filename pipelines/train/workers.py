"""What the worker processes of a multi-device training run inherit from the command: its logging.

``ddp_spawn`` starts each rank in a fresh interpreter, which knows nothing of the
command's logging setup, so Lightning's banners ("Initializing distributed", the
``distributed_backend`` block, "`Trainer.fit` stopped") and the libraries' warnings
would reach the user from every worker. :class:`WorkerLogging` is a callback that
travels to the workers with the Trainer and, as it is unpickled there (before the
workers set up the process group), repeats the command's :func:`pipelines.logs.configure`.
``ddp`` re-runs the command itself in each worker, which configures logging as usual.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from pipelines import logs


class WorkerLogging(L.Callback):
    """Carries the command's logging configuration into ``ddp_spawn``'s worker processes."""

    def __init__(self) -> None:
        self.logging_setup = logs.configured()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.logging_setup is not None and logs.configured() != self.logging_setup:
            level, verbose = self.logging_setup
            logs.configure(level, verbose=verbose)
