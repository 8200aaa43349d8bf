"""The few named exceptions of recsys.

Every one carries a message that reads as one line on its own; the CLI prints it
and exits non-zero, the UI shows it with ``st.error``.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base of every error recsys raises on purpose."""


class ConfigError(RecsysError):
    """A setting is missing or invalid."""


class CatalogError(RecsysError):
    """The catalog database cannot be reached, is not migrated, or refused an operation."""


class NotFoundError(RecsysError):
    """A playlist, track, model or collection that was asked for does not exist."""


class InputError(RecsysError):
    """An input file or source cannot be read at all (not one bad record: those become rejects)."""


class RecordError(RecsysError):
    """One input record is invalid; ingestion stores it as a reject with this message as the reason."""


class SourceError(RecsysError):
    """A remote source (such as the Spotify Web API) refused or failed a request."""


class LockedError(RecsysError):
    """Another process holds a lock on a store or job that this one needs."""


class ClusterError(RecsysError):
    """A compute cluster (Ray) cannot be reached or failed a job."""


class AudioError(RecordError):
    """An audio file cannot be used: empty, silent, corrupt, truncated or not audio (names the file and why)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoError(RecordError):
    """A video file cannot be used: not a video, no decodable frame, or beyond the limits (names the file and why)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VectorStoreError(RecsysError):
    """The vector store cannot be reached (the message names its URL) or refused an operation."""


class DimensionMismatchError(VectorStoreError):
    """A vector's length differs from the size of the collection's named vector."""
