"""The embedded store's directories: versions, their manifests, the ``CURRENT`` pointer, the rebuild lock.

Layout under the store's root directory::

    <root>/<collection>/v<N>/         one Edge shard per version (HNSW, payload indexes, WAL)
    <root>/<collection>/v<N>.json     the version's manifest: spec, counts when published
    <root>/<collection>/CURRENT       the number of the version readers use
    <root>/<collection>/.rebuild.lock held while a rebuild or revision of the collection runs
    <root>/<collection>/readers/      readers' views of published versions (see edge_readers)

A version is complete once its manifest is written; ``CURRENT`` is replaced atomically
(written to a temporary file, then renamed into place), so a reader finds the old
number or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from recsys.errors import LockedError, NotFoundError, VectorStoreError

POINTER = "CURRENT"
REBUILD_LOCK = ".rebuild.lock"
FICLONE = 0x40049409  # ioctl: make the target file share the source's extents (linux/fs.h)


class VersionDirs:
    """Paths, manifests and the pointer of every collection under ``root``."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{version}"

    def manifest_path(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{version}.json"

    def pointer(self, name: str) -> Path:
        return self.folder(name) / POINTER

    def read_manifest(self, name: str, version: int) -> dict[str, Any]:
        path = self.manifest_path(name, version)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(
                f"vector store {self.root}: version {version} of {name!r} has no manifest"
            ) from None
        except (OSError, ValueError) as exc:
            raise VectorStoreError(f"{path}: unreadable manifest ({exc})") from exc

    def write_manifest(self, name: str, version: int, data: dict[str, Any]) -> None:
        atomic_write(self.manifest_path(name, version), json.dumps(data, indent=2, sort_keys=True))

    def has(self, name: str) -> bool:
        return self.pointer(name).is_file()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / POINTER).is_file())

    def current(self, name: str) -> int | None:
        pointer = self.pointer(name)
        return read_pointer(pointer) if pointer.is_file() else None

    def publish(self, name: str, version: int) -> None:
        """Point readers at ``version`` in one atomic step."""
        atomic_write(self.pointer(name), f"{version}\n")

    def versions(self, name: str) -> list[int]:
        """Complete versions: a directory and a manifest each, ascending."""
        folder = self.folder(name)
        found = []
        for path in folder.glob("v*.json") if folder.is_dir() else []:
            number = path.stem[1:]
            if number.isdigit() and self.version_dir(name, int(number)).is_dir():
                found.append(int(number))
        return sorted(found)

    def version_dirs(self, name: str) -> list[int]:
        """Every version directory, complete or not."""
        return [int(p.name[1:]) for p in self.folder(name).glob("v*") if p.is_dir() and p.name[1:].isdigit()]

    def remove(self, name: str, version: int) -> None:
        """Delete a version: its manifest first, so it is never listed without its directory."""
        self.manifest_path(name, version).unlink(missing_ok=True)
        shutil.rmtree(self.version_dir(name, version), ignore_errors=True)

    def remove_abandoned(self, name: str, current: int) -> None:
        """Remove versions newer than ``current``: drafts of writers that died before publishing
        (the caller holds the writer's lock, so no live writer has one)."""
        for number in self.version_dirs(name):
            if number > current:
                self.remove(name, number)

    def take_rebuild_lock(self, name: str) -> int:
        """Lock out rebuilds of ``name`` in other processes; returns the descriptor to :func:`unlock`.

        The system releases the lock when this process ends, however it ends.
        """
        fd = os.open(self.folder(name) / REBUILD_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"a rebuild of {name!r} in {self.root} is already running in another process"
            ) from None
        return fd


# Files of an indexed (immutable) segment that Qdrant writes once, when it builds the segment,
# and never again: the float32 vectors, their int8 copies and the HNSW graph. A change to the
# segment's points (an update moves the point to an appendable segment, a delete sets a flag
# in the segment's other files) leaves them as they are; an optimisation that rebuilds the
# segment writes new files. tests/vectorstore/test_revisions.py checksums them through
# revisions that insert, update, delete and optimise.
SEALED_FILES = frozenset({"matrix.dat", "quantized.data", "graph.bin", "links.bin", "links_compressed.bin"})


def clone_tree(src: Path, dst: Path) -> None:
    """Copy a closed version's directory to ``dst`` as the start of a new version: a reflink per
    file where the file system shares extents (btrfs, XFS); else a hard link for a sealed
    segment's write-once files (:data:`SEALED_FILES`) and an in-kernel copy for every other file.
    A revision of a large collection so costs its small and mutable files, not its vectors."""
    shutil.copytree(src, dst, copy_function=_clone_file)


def _clone_file(src: str, dst: str) -> None:
    with open(src, "rb") as source, open(dst, "wb") as target:
        try:
            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
            return
        except OSError:  # no reflinks on this file system
            pass
    if os.path.basename(src) in SEALED_FILES:
        os.unlink(dst)
        try:
            os.link(src, dst)
            return
        except OSError:  # a file system without hard links: copy this one too
            pass
    shutil.copyfile(src, dst)  # sendfile(2): the bytes never pass through Python


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def read_pointer(path: Path) -> int:
    text = path.read_text().strip()
    if not text.isdigit():
        raise VectorStoreError(f"{path}: expected a version number, found {text[:40]!r}")
    return int(text)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
