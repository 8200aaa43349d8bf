"""Spotify Million Playlist Dataset slices → catalog.

Accepts ``.json`` and ``.json.gz`` slice files, directories of them (searched
recursively) and ``.zip`` archives, in the full original schema (``pos``, album and
artist URIs, durations) and in the trimmed schema (no ``pos``: position is list order).

Files are streamed: each is read and parsed on its own, and several make a chunk
(about ``batch_rows`` entries) that is normalised and merged into the catalog in two
transactions, its tracks and then its entries, so memory depends on the chunk size,
not on the number of files. A file already ingested
with the same bytes is skipped. A truncated file lands the playlists before the
break; invalid UTF-8 and lone surrogate escapes reject only the records they touch.

Hostile input costs a reject, never the machine (:mod:`pipelines.ingest.guards`):
an input expanding past ``max_input_bytes`` or nesting deeper than ``max_json_depth``
is refused by name, a name longer than ``max_name_chars`` is cut, and a value no
column can hold or that is not what its field says (a ``modified_at`` outside
1970..2100, a ``num_followers`` or ``duration_ms`` that is not a whole number a
32-bit column holds, a ``collaborative`` that is not true or false, an artist or album
URI that is not one) is stored as null; each with a reject row.
"""

from __future__ import annotations

import codecs
import errno
import functools
import gzip
import hashlib
import io
import operator
import re
import struct
import unicodedata
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import blake3
import ijson
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.json as pajson
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.ingest.guards import (
    MAX_NAME_CHARS,
    InputLimits,
    check_depth,
    check_namespace,
    location_problem,
    read_file,
    read_member,
    shorten,
)
from pipelines.ingest.normalize import (
    RAW_TRACK,
    SPOTIFY_TRACK_URI,
    PreparedTracks,
    assemble,
    distinct_tracks,
    name_cut_reason,
    playlist_frame,
    prepare_tracks,
)
from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.catalog.deferred import catalog_entries, deferred
from recsys.catalog.frames import CatalogChunk, conform
from recsys.catalog.load_memory import KnownTracks, Survey, brought, settled
from recsys.catalog.merges import merge_dimensions, merge_facts
from recsys.catalog.schema import DEFAULT_NAMESPACE, IngestBatch
from recsys.catalog.staging import probe_tracks
from recsys.errors import InputError

SOURCE = "mpd"
# Bytes that are not UTF-8 are decoded to this noncharacter (never found in real text), so that
# only the records they touch are rejected; a literal U+FFFD in the data is legitimate text.
_INVALID_MARK = "\U0010fffe"


def _mark_invalid(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _INVALID_MARK, error.end


codecs.register_error("recsys-mark", _mark_invalid)


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


def _already_done(location: str, data: bytes, digest: str, done: dict[str, set[str]]) -> bool:
    """Whether these bytes were ingested from ``location``; catalogs written before recorded
    SHA-256 digests (of the same length), so a location known under another digest is checked
    against its SHA-256 too."""
    known = done.get(location, set())
    return digest in known or (bool(known) and hashlib.sha256(data).hexdigest() in known)


# One row per playlist entry, in file order: the occurrence of a track and its descriptive fields.
ENTRY_TRACK = {
    "source_key": pl.String,
    "title": pl.String,
    "artist_credit": pl.String,
    "artist_uri": pl.String,
    "album_title": pl.String,
    "album_uri": pl.String,
    "duration_ms": pl.Int64,
}
PLAYLIST_COLUMNS = (
    "source_key",
    "name",
    "description",
    "num_followers",
    "collaborative",
    "modified_at",
    "num_tracks",
)
_TRACK_URI = re.compile(SPOTIFY_TRACK_URI)
_ARTIST_URI_PATTERN = r"^spotify:artist:[0-9A-Za-z]{22}$"
_ALBUM_URI_PATTERN = r"^spotify:album:[0-9A-Za-z]{22}$"
_URI_PATTERNS = {"artist_uri": re.compile(_ARTIST_URI_PATTERN), "album_uri": re.compile(_ALBUM_URI_PATTERN)}
# The largest value of the catalog's integer columns (num_followers, duration_ms: 32 bits).
_INT32_MAX = 2**31 - 1
# Entry field → ENTRY_TRACK column, for the fields the trimmed schema lacks.
_OPTIONAL_TEXT = {"artist_uri": "artist_uri", "album_name": "album_title", "album_uri": "album_uri"}


PLAYLIST_SCHEMA: dict[str, Any] = {
    "source_key": pl.String,
    "name": pl.String,
    "description": pl.String,
    "num_followers": pl.Int64,
    "collaborative": pl.Boolean,
    "modified_at": pl.Datetime("us", "UTC"),
    "num_tracks": pl.Int64,
}
ENTRY_SCHEMA = {"playlist_key": pl.String, "position": pl.Int32}


@dataclass
class ParsedSlice:
    """The valid content of one slice; a playlist's entries keep their list positions."""

    playlists: pl.DataFrame  # PLAYLIST_SCHEMA
    tracks: pl.DataFrame  # ENTRY_TRACK, one row per entry
    entries: pl.DataFrame  # ENTRY_SCHEMA, row for row with ``tracks`` (whose source_key is the track key)
    problem: str | None = None  # a whole-file issue (truncation, encoding), already logged as a reject

    @classmethod
    def from_columns(
        cls,
        playlists: dict[str, list[Any]],
        tracks: dict[str, list[Any]],
        entries: dict[str, list[Any]],
        problem: str | None,
    ) -> ParsedSlice:
        return cls(
            pl.DataFrame(playlists, schema=PLAYLIST_SCHEMA, strict=False),
            pl.DataFrame(tracks, schema=ENTRY_TRACK, strict=False),
            pl.DataFrame(entries, schema=ENTRY_SCHEMA),
            problem,
        )

    @property
    def n_entries(self) -> int:
        return self.entries.height

    @property
    def n_playlists(self) -> int:
        return self.playlists.height


def _load_playlists(
    location: str, data: bytes, rejects: batches.RejectLog, limits: InputLimits
) -> tuple[list[Any], str | None]:
    """The playlists array of a slice, recovering what precedes a truncation or an encoding error."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _recover(location, data, str(exc), rejects, limits)
    if not isinstance(document, dict) or not isinstance(document.get("playlists"), list):
        raise InputError(f"{location}: not an MPD slice (no 'playlists' array at the top level)")
    return document["playlists"], None


# An escaped backslash, a valid surrogate pair, or a lone surrogate escape (which orjson refuses).
_SURROGATE = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
# _INVALID_MARK as JSON escapes.
_MARK_ESCAPE = b"\\udbff\\udffe"


def _mark_surrogate(match: re.Match[bytes]) -> bytes:
    text = match.group()
    return text if text == b"\\\\" or len(text) == 12 else _MARK_ESCAPE


def _recover(
    location: str, data: bytes, error: str, rejects: batches.RejectLog, limits: InputLimits
) -> tuple[list[Any], str | None]:
    lowered = error.lower()
    if "utf-8" in lowered or "utf8" in lowered:
        data = data.decode("utf-8", errors="recsys-mark").encode("utf-8")
        # the marked text parses, or recovers what precedes a truncation, or raises InputError
        return _load_playlists(location, data, rejects, limits)[0], "invalid UTF-8"
    if "surrogate" in lowered:
        marked = _SURROGATE.sub(_mark_surrogate, data)
        if marked != data:  # the lone escapes are marked: only the records holding them are rejected
            return _load_playlists(location, marked, rejects, limits)[0], "lone surrogate escapes"
    # The streaming parser builds nested Python objects: a file nested too deep is refused before it.
    check_depth(location, data, limits.max_json_depth)
    playlists, failure = _stream_playlists(data, "yajl2_c")
    if failure is not None and "integer overflow" in str(failure):
        # yajl stops at an integer beyond 64 bits; Python's own parser reads on, more slowly.
        playlists, failure = _stream_playlists(data, "python")
    if failure is not None:
        reason = f"truncated or malformed JSON after playlists[{len(playlists) - 1}]: {str(failure).splitlines()[0][:200]}"
        if not playlists and b'"playlists"' not in data[:4096]:
            raise InputError(f"{location}: not readable as JSON ({error})") from failure
        rejects.add(f"{location}: playlists[{len(playlists)}:]", reason, data[-2048:])
        return playlists, "truncated"
    if not playlists:
        raise InputError(f"{location}: not readable as JSON ({error})")
    return playlists, None


def _stream_playlists(data: bytes, backend: str) -> tuple[list[Any], Exception | None]:
    """The playlists a streaming parse reads, and the error that stopped it (None at the end)."""
    playlists: list[Any] = []
    try:
        for item in ijson.get_backend(backend).items(data, "playlists.item", use_float=True):
            playlists.append(item)
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError) as exc:
        return playlists, exc
    return playlists, None


def _bad_text(value: Any) -> bool:
    return not isinstance(value, str) or _INVALID_MARK in value


# What keys.clean_text removes or turns into spaces: a name of these alone is empty.
_BLANK = r"^[\s\p{Cc}[\p{Cf}--[\x{200C}\x{200D}]]]*$"


def _blank(value: str) -> bool:
    """Whether ``value`` is empty once cleaned (``keys.clean_text``): whitespace, control and
    invisible format characters only (the joiners U+200C and U+200D count as text)."""
    for char in value:
        if char in "\u200c\u200d" or not (char.isspace() or unicodedata.category(char) in ("Cc", "Cf")):
            return False
    return True


# modified_at: seconds since 1970, before 2100-01-01 (a range both databases store).
_EPOCH_END = 4_102_444_800


def _shown(value: Any) -> str:
    """A JSON value for a reject reason, short whatever it holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 1_000:
            return f"an integer of {value.bit_length():,} bits"
        return str(value) if abs(value) < 10**15 else f"{value:.6g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value[:80] if isinstance(value, str) else value)[:120]


def _timestamp_problem(value: Any) -> str | None:
    """Why a playlist's ``modified_at`` cannot be stored (it is then null); None when it can, or is absent."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if 0 <= value < _EPOCH_END:  # false for NaN too
        return None
    return (
        f"invalid modified_at: {_shown(value)} is not a time in seconds between 1970 and 2100; stored as null"
    )


def _count(value: Any) -> int | None:
    """A playlist's ``num_followers``: a whole number a 32-bit column holds; None otherwise."""
    return value if type(value) is int and 0 <= value <= _INT32_MAX else None


def _count_problem(value: Any) -> str | None:
    if value is None or _count(value) is not None:
        return None
    return (
        f"invalid num_followers: {_shown(value)} is not a whole number between 0 and {_INT32_MAX:,}; "
        "stored as null"
    )


def _flag(value: Any) -> bool | None:
    """``collaborative``: a boolean, or the text true or false; None otherwise."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


def _flag_problem(value: Any) -> str | None:
    if value is None or _flag(value) is not None:
        return None
    return f"invalid collaborative: {_shown(value)} is not true or false; stored as null"


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or _timestamp_problem(value):
        return None
    return datetime.fromtimestamp(value, UTC)


def _is_pid(value: Any) -> TypeGuard[int]:
    return type(value) is int and -(2**63) <= value < 2**63


def parse_slice(
    location: str, data: bytes, rejects: batches.RejectLog, limits: InputLimits | None = None
) -> ParsedSlice:
    """Validate and flatten one slice; every invalid playlist or entry becomes a reject.

    A clean slice (the usual case) is parsed natively against a strict schema
    (:func:`_parse_strict`). One that does not fit it is parsed into Python objects and,
    when it is still clean in Python's looser terms (a boolean ``collaborative``, a
    float ``modified_at``), flattened column by column; a slice with any problem takes
    the record-by-record path that names each bad record. A problem includes what
    ``limits`` refuse: a name longer than ``max_name_chars``, a blank track or artist
    name, a ``modified_at`` outside 1970..2100.
    """
    limits = limits or InputLimits()
    parsed = _parse_strict(data, limits.max_name_chars)
    if parsed is not None:
        return parsed
    raw_playlists, problem = _load_playlists(location, data, rejects, limits)
    if problem is None:
        parsed = _parse_clean(raw_playlists, limits.max_name_chars)
        if parsed is not None:
            return parsed
    return _parse_records(location, raw_playlists, rejects, problem, limits.max_name_chars)


# The slice as a strictly typed Arrow schema: a value of another JSON type fails the read.
_ARROW_ENTRY = pa.struct(
    [
        ("track_uri", pa.string()),
        ("track_name", pa.string()),
        ("artist_name", pa.string()),
        ("artist_uri", pa.string()),
        ("album_uri", pa.string()),
        ("album_name", pa.string()),
        ("duration_ms", pa.int64()),
    ]
)
_ARROW_SLICE = pa.schema(
    [
        (
            "playlists",
            pa.list_(
                pa.struct(
                    [
                        ("pid", pa.int64()),
                        ("name", pa.string()),
                        ("description", pa.string()),
                        ("num_followers", pa.int64()),
                        ("collaborative", pa.string()),
                        ("modified_at", pa.int64()),
                        ("tracks", pa.list_(_ARROW_ENTRY)),
                    ]
                )
            ),
        )
    ]
)


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (checked by Arrow, without decoding it into a str)."""
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(data)))
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _parse_strict(data: bytes, max_name_chars: int = MAX_NAME_CHARS) -> ParsedSlice | None:
    """A slice without a single problem, parsed and flattened natively; None when there is one.

    The JSON is read against a fixed Arrow schema, which fails on anything not of the
    expected JSON type (a number for a name, a float for a duration, a string entry,
    invalid UTF-8, a truncation); the required values are then checked column-wise.
    The result equals what :func:`_parse_clean` makes of the same slice; every slice
    this path declines takes that one, or the record-by-record path that names each
    bad record.
    """
    if not _is_utf8(data):  # the JSON reader does not check: the record path marks what it touches
        return None
    if len(data) >= 2**31 - 1:  # the reader's block size is a 32-bit integer
        return None
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=_ARROW_SLICE, newlines_in_values=True, unexpected_field_behavior="ignore"
            ),
            # The C library's allocator: with Arrow's default (mimalloc) the benchmark's slices took
            # about a third more CPU to parse, much of it in the kernel.
            memory_pool=pa.system_memory_pool(),
        )
    except pa.ArrowException:  # not JSON, or not of the schema's types
        return None
    if table.num_rows != 1 or table.column("playlists").null_count:
        return None
    document = pl.from_arrow(table)
    assert isinstance(document, pl.DataFrame)
    records = document.explode("playlists").unnest("playlists")
    size = pl.col("tracks").list.len()
    if (
        records.height == 0
        or records.select(
            pl.col("pid").is_null().any()
            | pl.col("name").is_null().any()
            | (size.fill_null(0) == 0).any()
            | pl.col("pid").is_duplicated().any()
            | ((pl.col("modified_at") < 0) | (pl.col("modified_at") >= _EPOCH_END)).any()
            | ((pl.col("num_followers") < 0) | (pl.col("num_followers") > _INT32_MAX)).any()
            | ~pl.col("collaborative").is_in(["true", "false"]).fill_null(True).all()
            | _too_long(("name", "description"), max_name_chars)
        ).item()
    ):
        return None
    key = pl.format("mpd:{}", pl.col("pid"))
    flat = (
        records.select(
            key.alias("playlist_key"), "tracks", pl.int_ranges(size, dtype=pl.Int32).alias("position")
        )
        .explode("tracks", "position")
        .unnest("tracks")
    )
    if flat.select(
        pl.col("track_uri").is_null().any()
        | ~pl.col("track_uri").str.contains(SPOTIFY_TRACK_URI).all()
        | pl.col("track_name").is_null().any()
        | pl.col("artist_name").is_null().any()
        | pl.col("track_name").str.contains(_BLANK).any()
        | pl.col("artist_name").str.contains(_BLANK).any()
        | ((pl.col("duration_ms") <= 0) | (pl.col("duration_ms") > _INT32_MAX)).any()
        | ~pl.col("artist_uri").str.contains(_ARTIST_URI_PATTERN).fill_null(True).all()
        | ~pl.col("album_uri").str.contains(_ALBUM_URI_PATTERN).fill_null(True).all()
        | _too_long(("track_name", "artist_name", "album_name"), max_name_chars)
    ).item():
        return None
    playlists = records.select(
        key.alias("source_key"),
        "name",
        "description",
        "num_followers",
        (pl.col("collaborative") == "true").alias("collaborative"),
        pl.from_epoch("modified_at", time_unit="s")
        .dt.cast_time_unit("us")
        .dt.replace_time_zone("UTC")
        .alias("modified_at"),
        size.cast(pl.Int64).alias("num_tracks"),
    )
    tracks = flat.select(
        pl.col("track_uri").alias("source_key"),
        pl.col("track_name").alias("title"),
        pl.col("artist_name").alias("artist_credit"),
        "artist_uri",
        pl.col("album_name").alias("album_title"),
        "album_uri",
        "duration_ms",
    )
    return ParsedSlice(playlists, tracks, flat.select("playlist_key", "position"), None)


def _too_long(columns: tuple[str, ...], max_chars: int) -> pl.Expr:
    """Whether a value of ``columns`` may have more than ``max_chars`` characters: more bytes
    (cheap to tell; the Python paths count the characters)."""
    return functools.reduce(operator.or_, [(pl.col(c).str.len_bytes() > max_chars).any() for c in columns])


def _empty_columns() -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, list[Any]]]:
    return (
        {c: [] for c in PLAYLIST_COLUMNS},
        {c: [] for c in ENTRY_TRACK},
        {"playlist_key": [], "position": []},
    )


def _add_playlist(
    columns: dict[str, list[Any]], key: str, record: dict[str, Any], kept: int, max_chars: int
) -> None:
    description = record.get("description")
    followers = record.get("num_followers")
    collaborative = record.get("collaborative")
    modified = record.get("modified_at")
    columns["source_key"].append(key)
    columns["name"].append(record["name"][:max_chars])
    columns["description"].append(
        description[:max_chars] if isinstance(description, str) and _INVALID_MARK not in description else None
    )
    columns["num_followers"].append(_count(followers))
    columns["collaborative"].append(_flag(collaborative))
    columns["modified_at"].append(
        datetime.fromtimestamp(modified, UTC)
        if isinstance(modified, int | float)
        and not isinstance(modified, bool)
        and not _timestamp_problem(modified)
        else None
    )
    columns["num_tracks"].append(kept)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and _INVALID_MARK not in value else None


def _duration(value: Any) -> int | None:
    """A track's ``duration_ms``: a positive whole number a 32-bit column holds; None otherwise."""
    return value if type(value) is int and 0 < value <= _INT32_MAX else None


def _uri(field: str, value: Any) -> str | None:
    """An ``artist_uri`` or ``album_uri`` that is one; None otherwise."""
    return value if type(value) is str and _URI_PATTERNS[field].fullmatch(value) else None


def _parse_clean(raw_playlists: list[Any], max_name_chars: int = MAX_NAME_CHARS) -> ParsedSlice | None:
    """Column-wise flattening of a slice without a single problem; None when there is one."""
    seen: set[int] = set()
    for record in raw_playlists:
        if type(record) is not dict:
            return None
        pid, name, tracks = record.get("pid"), record.get("name"), record.get("tracks")
        if not _is_pid(pid) or type(name) is not str or type(tracks) is not list or not tracks:
            return None
        if pid in seen or _playlist_problems(record, max_name_chars):
            return None
        seen.add(pid)
    flat = [entry for record in raw_playlists for entry in record["tracks"]]
    try:
        uris = [entry["track_uri"] for entry in flat]
        titles = [entry["track_name"] for entry in flat]
        credits = [entry["artist_name"] for entry in flat]
        if not all(map(_TRACK_URI.fullmatch, uris)):
            return None
    except (KeyError, TypeError):  # an entry that is not an object, lacks a field or has a non-text URI
        return None
    if not all(type(v) is str for v in titles) or not all(type(v) is str for v in credits):
        return None
    if any(_text_problems(entry, max_name_chars) for entry in flat):
        return None
    playlists, tracks, entries = _empty_columns()
    tracks["source_key"], tracks["title"], tracks["artist_credit"] = uris, titles, credits
    for field, column in _OPTIONAL_TEXT.items():
        values = [entry.get(field) for entry in flat]
        tracks[column] = [v if type(v) is str else None for v in values]  # each checked by _text_problems
    tracks["duration_ms"] = [_duration(entry.get("duration_ms")) for entry in flat]
    for record in raw_playlists:
        n = len(record["tracks"])
        key = f"mpd:{record['pid']}"
        entries["playlist_key"].extend([key] * n)
        entries["position"].extend(range(n))
        _add_playlist(playlists, key, record, n, max_name_chars)
    return ParsedSlice.from_columns(playlists, tracks, entries, None)


def _playlist_problems(record: dict[str, Any], max_chars: int) -> list[str]:
    """What is cut or nulled of a playlist's own fields: a name or description too long, a bad time,
    follower count or collaborative flag."""
    problems = []
    for field in ("name", "description"):
        value = record.get(field)
        if isinstance(value, str) and len(value) > max_chars:
            problems.append(name_cut_reason(field, len(value), max_chars))
    for problem in (
        _timestamp_problem(record.get("modified_at")),
        _count_problem(record.get("num_followers")),
        _flag_problem(record.get("collaborative")),
    ):
        if problem:
            problems.append(problem)
    return problems


def _text_problems(entry: dict[str, Any], max_chars: int) -> list[str]:
    """What is cut or nulled of a valid entry: names longer than ``max_chars`` characters, an
    album name that is not text, a URI that is not one, a bad duration; or a blank track or
    artist name (which makes the entry invalid)."""
    problems = []
    for field in ("track_name", "artist_name", "album_name"):
        value = entry.get(field)
        if isinstance(value, str):
            if field != "album_name" and _blank(value):
                return [f"missing field: {field} (empty or blank)"]
            if len(value) > max_chars:
                problems.append(name_cut_reason(field, len(value), max_chars))
    album = entry.get("album_name")
    if album is not None and _text_or_none(album) is None:
        problems.append("invalid UTF-8 or non-text value in field: album_name; stored as null")
    for field in ("artist_uri", "album_uri"):
        value = entry.get(field)
        if value is not None and _uri(field, value) is None:
            shown = repr(value[:80]) if isinstance(value, str) else _shown(value)
            problems.append(f"invalid {field}: {shown}; stored as null")
    duration = entry.get("duration_ms")
    if duration is not None and _duration(duration) is None:
        problems.append(
            f"invalid duration_ms: {_shown(duration)} is not a whole number of milliseconds between 1 and "
            f"{_INT32_MAX:,}; stored as null"
        )
    return problems


def _parse_records(
    location: str,
    raw_playlists: list[Any],
    rejects: batches.RejectLog,
    problem: str | None,
    max_name_chars: int = MAX_NAME_CHARS,
) -> ParsedSlice:
    """Record-by-record flattening that rejects each invalid playlist or entry with its reason."""
    playlists, tracks, entries = _empty_columns()
    seen_pids: set[int] = set()
    for index, record in enumerate(raw_playlists):
        where = f"{location}: playlists[{index}]"
        if not isinstance(record, dict):
            rejects.add(where, "playlist is not a JSON object", record)
            continue
        pid = record.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            rejects.add(where, "missing field: pid (an integer is required)", record)
            continue
        if not _is_pid(pid):
            rejects.add(
                where, "invalid pid: not a 64-bit integer", {k: v for k, v in record.items() if k != "pid"}
            )
            continue
        where = f"{where} (pid {pid})"
        name = record.get("name")
        if name is None:
            rejects.add(where, "missing field: name", record)
            continue
        if _bad_text(name):
            rejects.add(where, "invalid UTF-8 or non-text value in field: name", record)
            continue
        items = record.get("tracks")
        if not isinstance(items, list):
            rejects.add(where, "missing field: tracks (a list is required)", record)
            continue
        if not items:
            rejects.add(where, "empty playlist: no tracks", record)
            continue
        if pid in seen_pids:
            rejects.add(where, "duplicate pid within the file", record)
            continue
        seen_pids.add(pid)
        key = f"mpd:{pid}"
        kept = 0
        for position, entry in enumerate(items):
            reason = _entry_problem(entry)
            cuts = [] if reason else _text_problems(entry, max_name_chars)
            if cuts and cuts[0].startswith("missing field"):
                reason = cuts[0]
            if reason:
                rejects.add(f"{where}.tracks[{position}]", reason, entry)
                continue
            for (
                cut
            ) in cuts:  # the entry is kept, its names cut (in normalize.prepare_tracks too) or values nulled
                rejects.add(f"{where}.tracks[{position}]", cut, entry)
            entries["playlist_key"].append(key)
            entries["position"].append(position)
            tracks["source_key"].append(entry["track_uri"])
            tracks["title"].append(entry["track_name"][:max_name_chars])
            tracks["artist_credit"].append(entry["artist_name"][:max_name_chars])
            album = _text_or_none(entry.get("album_name"))
            tracks["album_title"].append(album[:max_name_chars] if album is not None else None)
            for field in ("artist_uri", "album_uri"):
                tracks[field].append(_uri(field, entry.get(field)))
            tracks["duration_ms"].append(_duration(entry.get("duration_ms")))
            kept += 1
        if kept == 0:
            # Every entry was rejected: the playlist itself has nothing to offer.
            rejects.add(
                where,
                "empty playlist: every track entry was rejected",
                {k: v for k, v in record.items() if k != "tracks"},
            )
            continue
        for cut in _playlist_problems(record, max_name_chars):  # the playlist is kept, with a reject row
            rejects.add(where, cut, {k: v for k, v in record.items() if k != "tracks"})
        _add_playlist(playlists, key, record, kept, max_name_chars)
    return ParsedSlice.from_columns(playlists, tracks, entries, problem)


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "track entry is not a JSON object"
    uri = entry.get("track_uri")
    if uri is None:
        return "missing field: track_uri"
    if _bad_text(uri) or not _TRACK_URI.fullmatch(uri):
        return f"invalid track_uri: {str(uri)[:80]!r}"
    for field in ("track_name", "artist_name"):
        value = entry.get(field)
        if value is None:
            return f"missing field: {field}"
        if _bad_text(value):
            return f"invalid UTF-8 or non-text value in field: {field}"
    return None


def ingest_mpd(
    engine: Engine,
    paths: list[Path],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
    defer_indexes: bool | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest MPD slices into the catalog (idempotent, resumable at file granularity).

    Reading, parsing and normalising run in this thread while earlier chunks merge
    their artists, albums and tracks in a second one and their playlists and entries
    in a third (each in input order, a chunk's entries after its tracks; on SQLite,
    which has one writer, the second does both), so the parser and two database
    sessions work at the same time. An input is done when the transaction holding its
    entries commits; when a merge fails, the chunks after it are not merged.

    ``defer_indexes`` sets the secondary indexes and foreign keys aside during the
    load and rebuilds them at its end (:mod:`recsys.catalog.deferred`); by default
    (None) a load does so when it is large (:func:`should_defer`).

    ``limits`` (by default :class:`~pipelines.ingest.guards.InputLimits`' defaults) bound
    what one input may cost; an input beyond them is rejected and the others still load.
    """
    limits = limits or InputLimits()
    check_namespace(namespace)
    report = IngestReport(source=SOURCE)
    progress = progress or Progress.quiet()
    inputs = list(iter_inputs(paths))
    with engine.connect() as conn:
        done = batches_done(conn)
    if defer_indexes is None:
        defer_indexes = should_defer(engine, sum(i.size for i in inputs if i.location not in done))
    with deferred(engine, defer_indexes) as set_aside:
        _ingest(engine, inputs, done, namespace, batch_rows, progress, report, limits)
    if set_aside.rebuilt:
        report.messages.append(
            f"rebuilt {len(set_aside.rebuilt)} secondary indexes and foreign keys "
            f"set aside for the load in {set_aside.rebuild_s:.1f} s"
        )
    return report


# Full-schema MPD slices hold about 250 bytes of JSON per playlist entry.
_BYTES_PER_ENTRY = 250
# Loads expected to bring fewer entries than this keep every index up to date as they go.
DEFER_MIN_ENTRIES = 1_000_000


def should_defer(engine: Engine, input_bytes: int) -> bool:
    """Whether a load of ``input_bytes`` of new slices should set indexes aside.

    Rebuilding costs one sort of each whole table, so it pays when the load is
    large (about a million entries or more) and at least half the size of the
    catalog already there.
    """
    expected = input_bytes // _BYTES_PER_ENTRY
    return expected >= DEFER_MIN_ENTRIES and expected * 2 >= catalog_entries(engine)


def _ingest(
    engine: Engine,
    inputs: list[SliceInput],
    done: dict[str, set[str]],
    namespace: str,
    batch_rows: int,
    progress: Progress,
    report: IngestReport,
    limits: InputLimits,
) -> None:
    pending: list[_Pending] = []
    pending_rows = 0
    # A chunk merges in two transactions, its dimensions (artists, albums, tracks) and then its
    # facts (batch rows, playlists, entries, rejects), so the database writes one chunk's
    # entries while it writes the next one's tracks; its inputs are done only with the second.
    # Each writer takes the chunks in input order as soon as it can (the facts of a chunk wait
    # for its dimensions only); this thread goes on reading while at most _IN_FLIGHT chunks
    # are unsettled.
    inflight: deque[tuple[Future[None], list[_Pending]]] = deque()
    # The numbers of the chunks whose merge failed: the chunks queued behind one are left alone
    # (those before it are not: the dimensions writer may run a chunk ahead of the facts writer).
    failed: list[int] = []
    submitted = 0

    known_tracks = KnownTracks()
    with engine.connect() as conn:
        known_tracks.prime(conn)

    def merge(number: int, step: Callable[..., Any], *args: Any) -> Any:
        """``step(conn, *args)`` in a transaction of its own, unless the merge of an earlier chunk failed."""
        if failed and number > min(failed):
            raise _Abandoned
        try:
            with write_transaction(engine) as conn:
                return step(conn, *args)
        except BaseException:
            failed.append(number)
            raise

    def dimensions(number: int, chunk: _Chunk) -> pl.DataFrame | None:
        return merge(number, _merge_dimensions, chunk, known_tracks)

    def facts(number: int, chunk: _Chunk, track_ids: Future[pl.DataFrame | None]) -> None:
        # The chunk's dimensions first: their failure is re-raised here.
        merge(number, _merge_facts, chunk, track_ids.result(), namespace)

    def settle_oldest() -> None:
        future, chunk = inflight.popleft()
        future.result()  # re-raises a failed merge here, the first in input order
        for item in chunk:
            report.add_loaded(playlists=item.parsed.n_playlists, playlist_tracks=item.parsed.n_entries)
            report.add_rejects(item.rejects)

    def flush() -> None:
        nonlocal pending, pending_rows, submitted
        # The chunk is normalised while the previous ones merge, with what the load knew then.
        if pending:
            chunk = _prepare(pending, known_tracks, limits.max_name_chars)
            submitted += 1
            track_ids = dim_writer.submit(dimensions, submitted, chunk)
            inflight.append((fact_writer.submit(facts, submitted, chunk, track_ids), chunk.pending))
            while len(inflight) > _IN_FLIGHT:
                settle_oldest()
        pending, pending_rows = [], 0

    task = progress.start("ingest mpd", total=len(inputs))
    with ExitStack() as writers:
        dim_writer = writers.enter_context(ThreadPoolExecutor(1, thread_name_prefix="mpd-dimensions"))
        # SQLite has one writer at a time: there the facts queue behind the dimensions.
        fact_writer = (
            dim_writer
            if engine.dialect.name == "sqlite"
            else writers.enter_context(ThreadPoolExecutor(1, thread_name_prefix="mpd-facts"))
        )
        try:
            for item in inputs:
                report.inputs += 1
                try:
                    data = item.read(limits.max_input_bytes)
                except InputError as exc:  # over the size limit, or not a usable path
                    report.unreadable.append(str(exc))
                    _reject_input(engine, item.location, str(exc).split(": ", 1)[-1])
                    progress.advance(task)
                    continue
                except (OSError, EOFError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error) as exc:
                    report.unreadable.append(f"{item.location}: cannot be read ({exc})")
                    _reject_input(engine, item.location, f"unreadable input: {exc}")
                    progress.advance(task)
                    continue
                digest = checksum(data)
                if _already_done(item.location, data, digest, done):
                    report.skipped += 1
                    progress.advance(task)
                    continue
                done.setdefault(item.location, set()).add(digest)
                log = batches.RejectLog(SOURCE)
                try:
                    parsed = parse_slice(item.location, data, log, limits)
                except InputError as exc:
                    report.unreadable.append(str(exc))
                    _reject_input(engine, item.location, str(exc).split(": ", 1)[-1], data[:2048])
                    progress.advance(task)
                    continue
                del data
                pending.append(_Pending(item.location, digest, parsed, log))
                pending_rows += parsed.n_entries
                if pending_rows >= batch_rows:
                    flush()
                progress.advance(task)
            flush()
            while inflight:
                settle_oldest()
        finally:
            progress.stop()


# Chunks merging or queued to merge while the next one is read: two, so that both writers are busy.
_IN_FLIGHT = 2


class _Abandoned(Exception):
    """A chunk not merged because one before it failed (that failure is the one reported)."""


@dataclass
class _Pending:
    location: str
    checksum: str
    parsed: ParsedSlice
    rejects: batches.RejectLog


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


def _record_batches(conn: Connection, pending: list[_Pending]) -> list[int]:
    """One finished ``ingest_batch`` row per input, written in the transaction that loads its data."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    rows = [
        {
            "source": SOURCE,
            "location": item.location,
            "checksum": item.checksum,
            "status": "done",
            "loaded": item.parsed.n_entries,
            "rejected": len(item.rejects.rows),
            "detail": {
                "playlists": item.parsed.n_playlists,
                "entries": item.parsed.n_entries,
                "problem": item.parsed.problem,
            },
            "finished_at": now,
        }
        for item in pending
    ]
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 500):
        values = insert(IngestBatch).values(rows[start : start + 500])
        upsert = values.on_conflict_do_update(
            index_elements=["source", "location", "checksum"],
            set_={c: values.excluded[c] for c in ("status", "loaded", "rejected", "detail", "finished_at")},
        ).returning(IngestBatch.location, IngestBatch.id)
        ids.update({r[0]: int(r[1]) for r in conn.execute(upsert)})
    return [ids[item.location] for item in pending]


@dataclass
class _Chunk:
    """The parsed slices of one transaction, normalised before their merge."""

    pending: list[_Pending]
    playlists: pl.DataFrame  # normalised; batch_id holds the index of the slice in pending
    entries: pl.DataFrame  # playlist_key, position, track_key
    wanted: pl.DataFrame  # per distinct track, the values this chunk brings (load_memory.brought)
    survey: Survey  # what the load knew of them when the chunk was prepared
    tracks: PreparedTracks  # the distinct tracks not known to be settled when prepared


def _prepare(pending: list[_Pending], known_tracks: KnownTracks, max_name_chars: int) -> _Chunk:
    """Flatten and normalise the slices of one chunk; no database work, so it runs beside a merge."""
    tracks = pl.concat([item.parsed.tracks for item in pending])
    entries = pl.concat([item.parsed.entries for item in pending]).with_columns(
        tracks["source_key"].alias("track_key")
    )
    playlists = pl.concat(
        [
            item.parsed.playlists.with_columns(pl.lit(index, pl.Int64).alias("batch_id"))
            for index, item in enumerate(pending)
        ]
    )
    if playlists["source_key"].n_unique() < playlists.height:
        # A pid found again in a later file replaces the earlier playlist, as it does across chunks.
        last = playlists.group_by("source_key").agg(pl.col("batch_id").max())
        entry_slice = pl.Series([i for i, item in enumerate(pending) for _ in range(item.parsed.n_entries)])
        entries = (
            entries.with_columns(entry_slice.alias("batch_id"))
            .join(last, left_on=["playlist_key", "batch_id"], right_on=["source_key", "batch_id"], how="semi")
            .drop("batch_id")
        )
        playlists = playlists.join(last, on=["source_key", "batch_id"], how="semi")
    # Every MPD track key is the track's Spotify URI.
    tracks = tracks.with_columns(pl.col("source_key").alias("spotify_uri"))
    raw = distinct_tracks(conform(tracks, RAW_TRACK))
    wanted = brought(raw)
    # Tracks already in the catalog that this chunk cannot improve need no normalising nor
    # merging. Those the load knows now are dropped here; the merge drops any settled since.
    survey = known_tracks.survey(wanted)
    if survey.settled.height:
        raw = raw.filter(~pl.col("source_key").is_in(survey.settled["source_key"].implode()))
    # The parser has cut long names already (with reject rows): the same limit applies here.
    return _Chunk(
        pending,
        playlist_frame(playlists, max_name_chars).collect(),
        entries,
        wanted,
        survey,
        prepare_tracks(raw, max_name_chars),
    )


def _merge_dimensions(conn: Connection, chunk: _Chunk, known_tracks: KnownTracks) -> pl.DataFrame | None:
    """Merge the artists, albums, tracks and credits of one prepared chunk; the ``key, id`` of its tracks."""
    # Settled tracks (in the catalog, holding all this chunk could add) need no merging, only
    # their ids: first those this load knows, then the rest looked up. When the load knows the
    # whole catalog, a track it does not know is new: there is nothing to look up. What the load
    # knew when the chunk was prepared is only brought up to date with what it learnt since.
    cached, lacking, unknown = known_tracks.classify(chunk.survey)
    probed = probe_tracks(conn, lacking if known_tracks.complete else pl.concat([lacking, unknown]))
    done = pl.concat([cached["source_key"], settled(chunk.wanted, probed)["source_key"]])
    known = pl.concat([cached, probed.select("source_key", "id")])
    merged = assemble(chunk.tracks.without(done))
    track_ids = merge_dimensions(conn, merged, known=known, memory=known_tracks)[1]
    # Only tracks known when classified can be known again: new ones and unknown ones probed are not.
    known_tracks.add(probed, merged.new_tracks, among=lacking)
    return track_ids


def _merge_facts(conn: Connection, chunk: _Chunk, track_ids: pl.DataFrame | None, namespace: str) -> None:
    """Merge the playlists, entries and rejects of one chunk whose dimensions are merged, with its batch rows."""
    batch_ids = _record_batches(conn, chunk.pending)
    for batch_id, item in zip(batch_ids, chunk.pending, strict=True):
        for row in item.rejects.rows:
            row["batch_id"] = batch_id
    playlists = chunk.playlists.with_columns(
        pl.col("batch_id").replace_strict(dict(enumerate(batch_ids)), return_dtype=pl.Int64)
    )
    rejects = pl.concat([item.rejects.frame() for item in chunk.pending])
    # merge_facts conforms each frame to its schema itself.
    facts = CatalogChunk(playlists=playlists, entries=chunk.entries, rejects=rejects)
    merge_facts(conn, facts, namespace=namespace, track_ids=track_ids)


def _reject_input(engine: Engine, location: str, reason: str, raw: Any = None) -> None:
    log = batches.RejectLog(SOURCE)
    log.add(location, reason, raw)
    with write_transaction(engine) as conn:
        log.flush(conn)
