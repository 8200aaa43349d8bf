"""MPD inputs: the slice files below the paths given, and the checksums that tell an input already loaded.

A path is a ``.json`` or ``.json.gz`` slice, a directory of them (searched
recursively) or a ``.zip`` archive of them. A path that cannot be used is an input
whose read says why, so the paths after it are still read. An input's bytes are
recognised by their BLAKE3 digest (SHA-256 for inputs recorded by earlier versions).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
from sqlalchemy import Connection, select

from pipelines.ingest.guards import location_problem, read_file, read_member, shorten
from recsys.catalog.schema import IngestBatch
from recsys.errors import InputError

SOURCE = "mpd"


@dataclass
class SliceInput:
    location: str
    read: Callable[[int], bytes]  # the input's JSON, given the most bytes it may expand to
    size: int = 0  # bytes of JSON it holds (estimated for compressed inputs)


def iter_inputs(paths: list[Path]) -> Iterator[SliceInput]:
    """Every slice file below ``paths``, in a stable order.

    A path that cannot be used (missing, a symbolic link loop, an empty directory, not a
    zip archive) is an input whose ``read`` raises InputError saying why, so the paths
    after it are still read.
    """
    for path in paths:
        problem = _path_problem(path)
        if problem:
            yield _unusable(path, problem)
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_slice_name(p.name))
            if not files:
                yield _unusable(path, "no MPD slice files (.json, .json.gz, .zip) in this directory")
            for file in files:
                yield from iter_inputs([file])
        elif path.suffix == ".zip":
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                yield _unusable(path, f"not a readable zip archive ({exc})")
                continue
            with archive:
                for name in sorted(
                    n for n in archive.namelist() if _is_slice_name(n) and not n.endswith(".zip")
                ):
                    info = archive.getinfo(name)
                    location = f"{path}!{name}"
                    if problem := location_problem(location):
                        yield SliceInput(
                            location, functools.partial(_refuse, f"{shorten(location)}: {problem}")
                        )
                        continue
                    # The directory's sizes are claims: the estimate is bounded by the bytes there.
                    size = min(info.file_size, info.compress_size * _MAX_RATIO)
                    if name.endswith(".gz"):
                        size = info.compress_size * _GZIP_RATIO
                    yield SliceInput(location, functools.partial(read_member, path, name), size)
        else:
            yield SliceInput(str(path), functools.partial(read_file, path), _json_size(path))


def _path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read at all, in a few words; None when it can be looked at."""
    if problem := location_problem(str(path)):
        return problem
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "no such file or directory"
        return exc.strerror.lower() if exc.strerror else str(exc)
    return None


def _unusable(path: Path, problem: str) -> SliceInput:
    return SliceInput(str(path), functools.partial(_refuse, f"{shorten(str(path))}: {problem}"))


def _refuse(message: str, limit: int) -> bytes:
    raise InputError(message)


def _is_slice_name(name: str) -> bool:
    return name.endswith((".json", ".json.gz", ".zip")) and not Path(name).name.startswith(".")


_GZIP_RATIO = 5  # JSON in a gzip member of a zip, whose uncompressed size is not at hand
# Expanded bytes per compressed byte believed of a size a file declares: slices compress about
# sevenfold; a larger claim (a truncated or forged gzip trailer, a zip directory) is not trusted.
_MAX_RATIO = 20


def _json_size(path: Path) -> int:
    """Bytes of JSON in the file (an estimate, for :func:`should_defer`): its size, or a gzip
    file's recorded uncompressed size, bounded by ``_MAX_RATIO`` times its compressed size."""
    try:
        size = path.stat().st_size
        if path.suffix != ".gz" or size < 18:
            return size
        with path.open("rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return size  # not gzip: reading it later reports why
            handle.seek(-4, 2)
            recorded = int.from_bytes(handle.read(4), "little")  # ISIZE: the size modulo 2**32
    except OSError:
        return 0  # reading it later reports why
    return max(size, min(recorded, size * _MAX_RATIO))


def checksum(data: bytes) -> str:
    """The identity of an input's bytes, as recorded in ``ingest_batch.checksum`` (64 hex digits).

    BLAKE3: a cryptographic hash about four times faster than SHA-256 here, which tells
    on gigabytes of slices.
    """
    return blake3.blake3(data).hexdigest()


def already_done(location: str, data: bytes, digest: str, done: dict[str, set[str]]) -> bool:
    """Whether these bytes were ingested from ``location``; catalogs written before recorded
    SHA-256 digests (of the same length), so a location known under another digest is checked
    against its SHA-256 too."""
    known = done.get(location, set())
    return digest in known or (bool(known) and hashlib.sha256(data).hexdigest() in known)


def batches_done(conn: Connection) -> dict[str, set[str]]:
    """Per location, the checksums of the MPD inputs already ingested from it: those are skipped."""
    rows = conn.execute(
        select(IngestBatch.location, IngestBatch.checksum).where(
            IngestBatch.source == SOURCE, IngestBatch.status == "done"
        )
    )
    done: dict[str, set[str]] = {}
    for location, digest in rows:
        done.setdefault(location, set()).add(digest)
    return done
