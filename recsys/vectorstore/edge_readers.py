"""Readers of the embedded store: each process reads a private view of a published version.

Qdrant Edge lets one process at a time open a shard directory. A published version is
sealed (indexed, flushed, closed) and is never opened for writing again, and opening
and querying a sealed shard leaves the contents of its files unchanged: it rewrites
``edge_config.json`` and each ``segment.json`` by writing a new file and renaming it
into place (a new inode), and touches no other file's contents (the tests check this by
checksumming every file). So a reader opens a *view*: a directory of hard links to the
version's files (``os.link``, about 2 ms for a version's 60-odd files, no data copied),
private to the reader, under ``<collection>/readers/<token>-v<N>/``. Any number of
processes can read the same version at once, each through its own view.

Locks (``flock``, released by the system when a process dies, however it dies):

* a reader holds a shared lock on the version directory ``v<N>/`` while its view is
  open; the collector deletes a version only after taking an exclusive lock on it
  without waiting, so a version goes only once no reader holds it;
* a reader holds an exclusive lock on its view's ``<token>-v<N>.lock`` file; a view
  whose lock can be taken belongs to a dead process and is removed by the next reader
  that opens a view or the next collection.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import qdrant_edge as qe

from recsys.errors import LockedError, NotFoundError, VectorStoreError
from recsys.vectorstore.edge_versions import VersionDirs, read_pointer

READERS = "readers"
STALE_NEW_S = 60.0  # a view's lock file still under its temporary name after this long is abandoned


def load_shard(path: Path) -> qe.EdgeShard:
    """Open the shard in ``path``; ``LockedError`` when another process has it open."""
    try:
        return qe.EdgeShard.load(str(path))
    except Exception as exc:  # the binding raises plain Exception
        text = str(exc)
        if "WouldBlock" in text or "Resource temporarily unavailable" in text:
            raise LockedError(
                f"vector store {path} is open in another process (an embedded shard allows one); "
                "stop that process or use a Qdrant server"
            ) from None
        raise VectorStoreError(f"cannot open vector store {path}: {exc}") from exc


@dataclass
class View:
    """One reader's open view of a published version and the locks that say it is in use."""

    version: int
    path: Path
    shard: qe.EdgeShard
    held: int  # the version directory, locked shared
    owner: int  # the view's lock file, locked exclusive

    def close(self) -> None:
        """Close the shard, remove the view, and let the version go."""
        try:
            self.shard.close()
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.with_suffix(".lock").unlink(missing_ok=True)
        finally:
            os.close(self.owner)
            os.close(self.held)


def open_view(dirs: VersionDirs, name: str, token: str) -> View:
    """A view of the version ``CURRENT`` names, held until :meth:`View.close`."""
    for _ in range(8):
        try:
            version = read_pointer(dirs.pointer(name))
        except FileNotFoundError:
            raise NotFoundError(f"vector store {dirs.root} has no collection {name!r}") from None
        held = _lock_dir(dirs.version_dir(name, version), fcntl.LOCK_SH)
        if held is None:
            continue  # collected between reading the pointer and locking: read the pointer again
        if not dirs.manifest_path(name, version).is_file():
            os.close(held)
            continue
        try:
            return _make_view(dirs, name, version, held, token)
        except BaseException:
            os.close(held)
            raise
    raise VectorStoreError(
        f"vector store {dirs.root}: versions of {name!r} changed faster than a reader opens one"
    )


def _make_view(dirs: VersionDirs, name: str, version: int, held: int, token: str) -> View:
    readers = dirs.folder(name) / READERS
    readers.mkdir(exist_ok=True)
    clean_dead_views(dirs, name)
    path = readers / f"{token}-v{version}"
    # The lock is taken under a temporary name and renamed into place, so a cleaner never
    # finds a view's lock file unlocked while its reader is alive.
    fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".lock", dir=readers)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(tmp, path.with_suffix(".lock"))
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(dirs.version_dir(name, version), path, copy_function=_link_or_copy)
        shard = load_shard(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        path.with_suffix(".lock").unlink(missing_ok=True)
        os.close(fd)
        raise
    return View(version, path, shard, held, fd)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links: a private copy reads the same
        shutil.copyfile(src, dst)


def _lock_dir(path: Path, how: int) -> int | None:
    """A descriptor of directory ``path`` locked ``how``; None when it is gone or (non-blocking) taken."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def clean_dead_views(dirs: VersionDirs, name: str) -> int:
    """Remove the views of readers that died; returns how many."""
    readers = dirs.folder(name) / READERS
    removed = 0
    for lock in readers.glob("*.lock") if readers.is_dir() else []:
        if lock.name.startswith(".new-"):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - lock.stat().st_mtime > STALE_NEW_S:
                    lock.unlink()
            continue
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its reader is alive
        else:
            shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def collect(dirs: VersionDirs, name: str, keep: int) -> list[int]:
    """Delete versions older than the ``keep`` newest up to the current one that no reader holds.

    Safe to run in several processes at once; returns the versions deleted.
    """
    clean_dead_views(dirs, name)
    current = dirs.current(name)
    if current is None:
        return []
    removed = []
    for old in sorted(dirs.version_dirs(name)):
        if old > current - keep:
            continue
        fd = _lock_dir(dirs.version_dir(name, old), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            continue  # a reader still has it; it goes once that reader moves on
        try:
            dirs.remove(name, old)
        finally:
            os.close(fd)
        removed.append(old)
    return removed
