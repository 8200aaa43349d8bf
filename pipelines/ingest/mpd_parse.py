"""MPD slices parsed into frames: natively when a slice is clean, record by record when it is not.

:func:`parse_slice` tries three parsers in turn. Arrow's JSON reader against a strict
schema takes a clean slice (the usual case); a slice it declines is parsed with
orjson and, when it is still clean in Python's looser terms, flattened column by
column; a slice with any problem takes the record-by-record path that names each bad
record in a reject row (:mod:`pipelines.ingest.mpd_fields` says what a field may
hold). A truncated file lands the playlists before the break; invalid UTF-8 and lone
surrogate escapes reject only the records they touch.
"""

from __future__ import annotations

import codecs
import functools
import io
import operator
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ijson
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.json as pajson

from pipelines.ingest.guards import MAX_NAME_CHARS, InputLimits, check_depth
from pipelines.ingest.mpd_fields import (
    ALBUM_URI_PATTERN,
    ARTIST_URI_PATTERN,
    BLANK,
    EPOCH_END,
    INT32_MAX,
    INVALID_MARK,
    TRACK_URI,
    bad_text,
    collaborative_flag,
    entry_problem,
    follower_count,
    is_pid,
    playlist_problems,
    text_or_none,
    text_problems,
    timestamp_problem,
    track_duration,
    uri_or_none,
)
from pipelines.ingest.normalize import SPOTIFY_TRACK_URI
from recsys.catalog import batches
from recsys.errors import InputError


# Bytes that are not UTF-8 decode to INVALID_MARK under this error handler (see _recover).
def _mark_invalid(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return INVALID_MARK, error.end


codecs.register_error("recsys-mark", _mark_invalid)

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
# INVALID_MARK as JSON escapes.
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
            | ((pl.col("modified_at") < 0) | (pl.col("modified_at") >= EPOCH_END)).any()
            | ((pl.col("num_followers") < 0) | (pl.col("num_followers") > INT32_MAX)).any()
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
        | pl.col("track_name").str.contains(BLANK).any()
        | pl.col("artist_name").str.contains(BLANK).any()
        | ((pl.col("duration_ms") <= 0) | (pl.col("duration_ms") > INT32_MAX)).any()
        | ~pl.col("artist_uri").str.contains(ARTIST_URI_PATTERN).fill_null(True).all()
        | ~pl.col("album_uri").str.contains(ALBUM_URI_PATTERN).fill_null(True).all()
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
        description[:max_chars] if isinstance(description, str) and INVALID_MARK not in description else None
    )
    columns["num_followers"].append(follower_count(followers))
    columns["collaborative"].append(collaborative_flag(collaborative))
    columns["modified_at"].append(
        datetime.fromtimestamp(modified, UTC)
        if isinstance(modified, int | float)
        and not isinstance(modified, bool)
        and not timestamp_problem(modified)
        else None
    )
    columns["num_tracks"].append(kept)


def _parse_clean(raw_playlists: list[Any], max_name_chars: int = MAX_NAME_CHARS) -> ParsedSlice | None:
    """Column-wise flattening of a slice without a single problem; None when there is one."""
    seen: set[int] = set()
    for record in raw_playlists:
        if type(record) is not dict:
            return None
        pid, name, tracks = record.get("pid"), record.get("name"), record.get("tracks")
        if not is_pid(pid) or type(name) is not str or type(tracks) is not list or not tracks:
            return None
        if pid in seen or playlist_problems(record, max_name_chars):
            return None
        seen.add(pid)
    flat = [entry for record in raw_playlists for entry in record["tracks"]]
    try:
        uris = [entry["track_uri"] for entry in flat]
        titles = [entry["track_name"] for entry in flat]
        credits = [entry["artist_name"] for entry in flat]
        if not all(map(TRACK_URI.fullmatch, uris)):
            return None
    except (KeyError, TypeError):  # an entry that is not an object, lacks a field or has a non-text URI
        return None
    if not all(type(v) is str for v in titles) or not all(type(v) is str for v in credits):
        return None
    if any(text_problems(entry, max_name_chars) for entry in flat):
        return None
    playlists, tracks, entries = _empty_columns()
    tracks["source_key"], tracks["title"], tracks["artist_credit"] = uris, titles, credits
    for field, column in _OPTIONAL_TEXT.items():
        values = [entry.get(field) for entry in flat]
        tracks[column] = [v if type(v) is str else None for v in values]  # each checked by text_problems
    tracks["duration_ms"] = [track_duration(entry.get("duration_ms")) for entry in flat]
    for record in raw_playlists:
        n = len(record["tracks"])
        key = f"mpd:{record['pid']}"
        entries["playlist_key"].extend([key] * n)
        entries["position"].extend(range(n))
        _add_playlist(playlists, key, record, n, max_name_chars)
    return ParsedSlice.from_columns(playlists, tracks, entries, None)


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
        if not is_pid(pid):
            rejects.add(
                where, "invalid pid: not a 64-bit integer", {k: v for k, v in record.items() if k != "pid"}
            )
            continue
        where = f"{where} (pid {pid})"
        name = record.get("name")
        if name is None:
            rejects.add(where, "missing field: name", record)
            continue
        if bad_text(name):
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
            reason = entry_problem(entry)
            cuts = [] if reason else text_problems(entry, max_name_chars)
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
            album = text_or_none(entry.get("album_name"))
            tracks["album_title"].append(album[:max_name_chars] if album is not None else None)
            for field in ("artist_uri", "album_uri"):
                tracks[field].append(uri_or_none(field, entry.get(field)))
            tracks["duration_ms"].append(track_duration(entry.get("duration_ms")))
            kept += 1
        if kept == 0:
            # Every entry was rejected: the playlist itself has nothing to offer.
            rejects.add(
                where,
                "empty playlist: every track entry was rejected",
                {k: v for k, v in record.items() if k != "tracks"},
            )
            continue
        for cut in playlist_problems(record, max_name_chars):  # the playlist is kept, with a reject row
            rejects.add(where, cut, {k: v for k, v in record.items() if k != "tracks"})
        _add_playlist(playlists, key, record, kept, max_name_chars)
    return ParsedSlice.from_columns(playlists, tracks, entries, problem)
