"""Limits an untrusted input must meet before it is parsed: its expanded size and its JSON nesting.

A hostile input costs a reject, never the machine. Decompression is streamed and
stops one byte past ``max_input_bytes`` (a zip or gzip bomb is refused by name, its
neighbours still load); JSON handed to a parser that builds nested Python objects
(the streaming recovery parser) is first measured by :func:`json_depth`, a byte
scan that costs a few vectorised passes and never recurses. Any JSON reader of the
ingest paths (MPD slices, Spotify answers, tables) can apply the same checks.
"""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from recsys.config import Settings
from recsys.errors import InputError

# The defaults, and the settings (environment variables) that change them.
MAX_INPUT_BYTES = 256 * 2**20  # a real MPD slice holds 30-40 MB of JSON
MAX_JSON_DEPTH = 64  # an MPD slice nests 5 levels deep
MAX_NAME_CHARS = 1_000  # the longest name in the real MPD sample has 305 characters
# Fixed bounds, not settings: what the catalog's indexes hold. PostgreSQL refuses a B-tree entry
# of more than about 2,700 bytes, and one such value rolls back the whole chunk.
MAX_ID_BYTES = 512  # an id, user, URI or MusicBrainz id longer than this is not one: the record is rejected
MAX_LOCATION_BYTES = 2_048  # an input's path or name (an ingest batch's location): longer is refused
ID_TOO_LONG = f"longer than {MAX_ID_BYTES} bytes: not an id"  # the end of the reject reason


@dataclass(frozen=True)
class InputLimits:
    """What one input may cost: expanded bytes, JSON nesting depth, characters per name or title."""

    max_input_bytes: int = MAX_INPUT_BYTES
    max_json_depth: int = MAX_JSON_DEPTH
    max_name_chars: int = MAX_NAME_CHARS

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(settings.max_input_bytes, settings.max_json_depth, settings.max_name_chars)


MAX_NAMESPACE_CHARS = 64  # playlist.namespace


def check_namespace(namespace: str) -> None:
    """InputError when a playlist namespace is longer than its column holds."""
    if len(namespace) > MAX_NAMESPACE_CHARS:
        raise InputError(
            f"--namespace of {len(namespace):,} characters: a namespace is at most {MAX_NAMESPACE_CHARS}"
        )


def location_problem(location: str) -> str | None:
    """Why an input's location cannot be recorded (its ingest batch is keyed by it); None when it can."""
    size = len(location.encode("utf-8", "surrogateescape"))
    if size <= MAX_LOCATION_BYTES:
        return None
    return f"a path of {size:,} bytes, longer than the {MAX_LOCATION_BYTES:,} an input's location may hold"


def shorten(text: str, limit: int = 200) -> str:
    """``text`` for a message: at most ``limit`` characters, an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def too_large(location: str, limit: int) -> InputError:
    return InputError(f"{location}: expands to more than {limit:,} bytes (RECSYS_MAX_INPUT_BYTES)")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_limited(stream: Readable, limit: int, location: str) -> bytes:
    """All of ``stream``, or InputError once it passes ``limit`` bytes (never more is held)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large(location, limit)
    return data


def read_file(path: Path, limit: int) -> bytes:
    """A file's bytes, gunzipped (streaming) when its name ends in ``.gz``; at most ``limit`` of them."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as stream:
            return read_limited(stream, limit, str(path))
    size = path.stat().st_size
    if size > limit:
        raise too_large(str(path), limit)
    with path.open("rb") as handle:
        # One buffer of the size the file has: asked for ``limit`` bytes at once, Python allocates
        # that much and then shrinks it, which cost several times the read itself per slice.
        data = handle.read(size + 1)
        if len(data) > size:  # the file grew since: read on, as far as the limit allows
            data += handle.read(limit + 1 - len(data))
            if len(data) > limit:
                raise too_large(str(path), limit)
        return data


def read_member(path: Path, name: str, limit: int) -> bytes:
    """A zip member's bytes, gunzipped when its name ends in ``.gz``, streamed and capped like :func:`read_file`.

    The sizes a zip's directory declares are not trusted: the expanded stream is counted.
    """
    location = f"{path}!{name}"
    with zipfile.ZipFile(path) as archive, archive.open(name) as member:
        if name.endswith(".gz"):
            with gzip.GzipFile(fileobj=member) as stream:
                return read_limited(stream, limit, location)
        return read_limited(member, limit, location)


# Byte classes for the depth scan: openers, closers, the quote and the backslash.
_CLASS = np.zeros(256, np.int8)
_CLASS[[ord("["), ord("{")]] = 1
_CLASS[[ord("]"), ord("}")]] = -1
_CLASS[ord('"')] = 2
_CLASS[ord("\\")] = 3


_BLOCK = 1 << 20  # bytes scanned at a time: the scan's own memory stays a few tens of MB


def json_depth(data: bytes, stop: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``data``, brackets inside strings not counted.

    Exact for valid JSON; for invalid JSON it is the depth a parser reaches before the
    first error, or more. Linear, without recursion or a Python loop over the bytes:
    it looks only at brackets, quotes and backslashes, a block of bytes at a time, and
    a quote is a string's end unless an odd run of backslashes precedes it. It returns
    as soon as the depth passes ``stop``.
    """
    view = np.frombuffer(data, np.uint8)
    depth = deepest = 0
    inside = False  # the block begins inside a string
    slashes = 0  # backslashes that end the previous block
    for offset in range(0, view.size, _BLOCK):
        depth, top, inside, slashes = _scan(view[offset : offset + _BLOCK], depth, inside, slashes)
        deepest = max(deepest, top)
        if stop is not None and deepest > stop:
            break
    return deepest


def _scan(block: np.ndarray, depth: int, inside: bool, slashes: int) -> tuple[int, int, bool, int]:
    """One block of :func:`json_depth`: (depth at its end, deepest in it, in a string at its end, trailing backslashes)."""
    codes = _CLASS[block]
    where = np.flatnonzero(codes)
    if not where.size:
        return depth, depth, inside, 0
    kinds = codes[where]
    n = where.size
    index = np.arange(n)
    adjacent = np.zeros(n, bool)
    adjacent[1:] = where[1:] == where[:-1] + 1
    slash = kinds == 3
    # The length of the run of backslashes ending at each backslash (a run that begins the block
    # continues the previous block's).
    joined = np.zeros(n, bool)
    joined[1:] = slash[1:] & slash[:-1] & adjacent[1:]
    starts = np.maximum.accumulate(np.where(joined, 0, index))
    run = index - starts + 1
    if where[0] == 0 and slash[0]:
        run[starts == 0] += slashes
    # A quote right after an odd run of backslashes is escaped.
    before = np.zeros(n, np.int64)
    before[1:] = np.where(slash[:-1] & adjacent[1:], run[:-1], 0)
    if where[0] == 0:
        before[0] = slashes
    quote = (kinds == 2) & (before % 2 == 0)
    # A bracket is inside a string when an odd number of string quotes precede it in the input.
    within = (np.cumsum(quote) + inside) % 2 == 1
    steps = np.where(within | (kinds > 1), 0, kinds).astype(np.int64)
    levels = np.cumsum(steps) + depth
    trailing = int(run[-1]) if slash[-1] and where[-1] == block.size - 1 else 0
    return int(levels[-1]), max(int(levels.max()), depth), bool(within[-1]), trailing


def check_depth(location: str, data: bytes, limit: int) -> None:
    """InputError when ``data`` nests arrays and objects deeper than ``limit``."""
    depth = json_depth(data, stop=limit)
    if depth > limit:
        raise InputError(f"{location}: JSON nested more than {limit:,} levels deep (RECSYS_MAX_JSON_DEPTH)")
