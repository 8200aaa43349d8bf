"""Logging of the ``recsys`` command, configured once where it starts.

Quiet by default: recsys's own messages (loggers ``recsys.*`` and ``pipelines.*``)
from WARNING up, the libraries' only from ERROR up, so a user sees what the command
prints and nothing of the frameworks' tips, banners, progress bars or deprecation
warnings. ``RECSYS_LOG_LEVEL`` sets the level of recsys's own messages; ``--verbose``
(or the level DEBUG) shows its debug messages and the libraries' warnings too.
Messages go to stderr through rich's handler on a terminal, one plain line each
otherwise (so a log file or a pipe gets whole lines).

Some libraries install handlers of their own when imported (lightning prints its
"GPU available" and "Tip" lines through one); those handlers get the same
thresholds, whenever the library is imported.
"""

from __future__ import annotations

import logging
import os
import sys

OWN = ("recsys", "pipelines")
# Libraries whose errors the command reports itself, in its own words (one line per input).
QUIET = {"spotipy": logging.CRITICAL}
# Environment read by libraries when they are first imported, which happens after this runs.
LIBRARY_QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' own handler: no "Some weights…" notices
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # hub downloads and transformers' "Loading weights" bars
    "TOKENIZERS_PARALLELISM": "false",  # the tokenizers fork warning
    # Ray's core worker notices in the driver (its errors still raise); Ray's line saying it read this
    # is dropped where the driver connects (pipelines.embed.executors)
    "RAY_BACKEND_LOG_LEVEL": "fatal",
}
_MARK = "_recsys_handler"
# The last configuration (level, verbose), for worker processes that must repeat it.
_CONFIGURED: list[tuple[str, bool]] = []


class _Threshold(logging.Filter):
    """Passes recsys's records from ``own`` up and everyone else's from ``others`` up."""

    def __init__(self, own: int, others: int) -> None:
        super().__init__()
        self.own, self.others = own, others

    def filter(self, record: logging.LogRecord) -> bool:
        top = record.name.split(".", 1)[0]
        if top in OWN:
            return record.levelno >= self.own
        return record.levelno >= max(self.others, QUIET.get(top, logging.NOTSET))


_THRESHOLD = _Threshold(logging.WARNING, logging.ERROR)


def _quieten(handler: logging.Handler) -> None:
    if _THRESHOLD not in handler.filters:
        handler.addFilter(_THRESHOLD)


class _QuietLibraries(logging.Logger):
    """A logger whose library handlers (installed at import, after :func:`configure`) keep the thresholds."""

    def addHandler(self, hdlr: logging.Handler) -> None:
        if self.name.split(".", 1)[0] not in OWN:
            _quieten(hdlr)
        super().addHandler(hdlr)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (the test runner swaps it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(level: str = "WARNING", *, verbose: bool = False) -> None:
    """Install the one handler on the root logger (again: replacing the previous one)."""
    _CONFIGURED[:] = [(level, verbose)]
    own = logging.DEBUG if verbose else logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    others = logging.WARNING if own <= logging.DEBUG else logging.ERROR
    if own > logging.DEBUG:
        for name, value in LIBRARY_QUIET_ENV.items():
            os.environ.setdefault(name, value)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    _THRESHOLD.own, _THRESHOLD.others = own, others
    handler.addFilter(_THRESHOLD)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(min(own, others))
    for name in OWN:
        logging.getLogger(name).setLevel(own)
    # Libraries imported already, and those imported later, print through their own handlers too.
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.name.split(".", 1)[0] not in OWN:
            for library_handler in logger.handlers:
                _quieten(library_handler)
    if not issubclass(logging.getLoggerClass(), _QuietLibraries):
        logging.setLoggerClass(_QuietLibraries)
    # Python warnings (deprecations and the like) become records of the "py.warnings" logger.
    logging.captureWarnings(True)


def configured() -> tuple[str, bool] | None:
    """The (level, verbose) of the last :func:`configure` in this process, or None."""
    return _CONFIGURED[0] if _CONFIGURED else None


ACCESS_LOGGER = "recsys.api.access"


def configure_access_log() -> None:
    """The HTTP API's access log: one JSON line per request on stderr, written whatever the level of
    recsys's other messages (it is what an operator of ``recsys serve`` reads)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
