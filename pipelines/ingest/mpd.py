"""Spotify Million Playlist Dataset slices → catalog.

Accepts ``.json`` and ``.json.gz`` slice files, directories of them (searched
recursively) and ``.zip`` archives, in the full original schema (``pos``, album and
artist URIs, durations) and in the trimmed schema (no ``pos``: position is list order).

Files are streamed: each is read, parsed and normalised on its own, and several are
merged into the catalog per transaction (about ``batch_rows`` entries), so memory
depends on the chunk size, not on the number of files. A file already ingested
with the same bytes is skipped. A truncated file lands the playlists before the
break; invalid UTF-8 rejects only the records it touches.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ijson
import orjson
import polars as pl
from sqlalchemy import Engine

from pipelines.ingest.normalize import RAW_TRACK, build_chunk, playlist_frame, raw_tracks_frame
from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog.bulk import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import InputError

SOURCE = "mpd"
_URI_PREFIX = "spotify:track:"
# Bytes that are not UTF-8 are decoded to this noncharacter (never found in real text), so that
# only the records they touch are rejected; a literal U+FFFD in the data is legitimate text.
_INVALID_MARK = "\U0010fffe"


def _mark_invalid(error: UnicodeDecodeError) -> tuple[str, int]:
    return _INVALID_MARK, error.end


codecs.register_error("recsys-mark", _mark_invalid)


@dataclass
class SliceInput:
    location: str
    read: Callable[[], bytes]


def iter_inputs(paths: list[Path]) -> Iterator[SliceInput]:
    """Every slice file below ``paths``, in a stable order; unreadable paths raise InputError."""
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_slice_name(p.name))
            if not files:
                raise InputError(f"{path}: no MPD slice files (.json, .json.gz, .zip) in this directory")
            for file in files:
                yield from iter_inputs([file])
        elif path.suffix == ".zip":
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise InputError(f"{path}: not a readable zip archive ({exc})") from exc
            with archive:
                for name in sorted(
                    n for n in archive.namelist() if _is_slice_name(n) and not n.endswith(".zip")
                ):
                    yield SliceInput(f"{path}!{name}", lambda path=path, name=name: _read_member(path, name))
        else:
            yield SliceInput(str(path), lambda path=path: _read_file(path))


def _is_slice_name(name: str) -> bool:
    return name.endswith((".json", ".json.gz", ".zip")) and not Path(name).name.startswith(".")


def _read_file(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _read_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        data = archive.read(name)
    return gzip.decompress(data) if name.endswith(".gz") else data


@dataclass
class ParsedSlice:
    playlists: dict[str, list[Any]]
    tracks: dict[str, list[Any]]
    entries: dict[str, list[Any]]
    problem: str | None = None  # a whole-file issue (truncation, encoding), already logged as a reject

    @property
    def n_entries(self) -> int:
        return len(self.entries["position"])


def _load_playlists(location: str, data: bytes, rejects: batches.RejectLog) -> tuple[list[Any], str | None]:
    """The playlists array of a slice, recovering what precedes a truncation or an encoding error."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _recover(location, data, str(exc), rejects)
    if not isinstance(document, dict) or not isinstance(document.get("playlists"), list):
        raise InputError(f"{location}: not an MPD slice (no 'playlists' array at the top level)")
    return document["playlists"], None


def _recover(
    location: str, data: bytes, error: str, rejects: batches.RejectLog
) -> tuple[list[Any], str | None]:
    problem = None
    if "utf-8" in error.lower() or "utf8" in error.lower():
        data = data.decode("utf-8", errors="recsys-mark").encode("utf-8")
        problem = "invalid UTF-8"
        try:
            return _load_playlists(location, data, rejects)[0], problem
        except InputError:
            raise
        except Exception:
            pass
    playlists: list[Any] = []
    try:
        for item in ijson.items(data, "playlists.item", use_float=True):
            playlists.append(item)
    except (ijson.JSONError, ijson.IncompleteJSONError) as exc:
        reason = f"truncated or malformed JSON after playlists[{len(playlists) - 1}]: {str(exc).splitlines()[0][:200]}"
        if not playlists and b'"playlists"' not in data[:4096]:
            raise InputError(f"{location}: not readable as JSON ({error})") from exc
        rejects.add(f"{location}: playlists[{len(playlists)}:]", reason, data[-2048:])
        return playlists, problem or "truncated"
    if not playlists:
        raise InputError(f"{location}: not readable as JSON ({error})")
    return playlists, problem


def _bad_text(value: Any) -> bool:
    return not isinstance(value, str) or _INVALID_MARK in value


def parse_slice(location: str, data: bytes, rejects: batches.RejectLog) -> ParsedSlice:
    """Validate and flatten one slice; every invalid playlist or entry becomes a reject."""
    raw_playlists, problem = _load_playlists(location, data, rejects)
    pl_rows: dict[str, list[Any]] = {
        c: []
        for c in (
            "source_key",
            "name",
            "description",
            "num_followers",
            "collaborative",
            "modified_at",
            "num_tracks",
        )
    }
    tr_rows: dict[str, list[Any]] = {c: [] for c in RAW_TRACK}
    en_rows: dict[str, list[Any]] = {"playlist_key": [], "position": [], "track_key": []}
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
        where = f"{where} (pid {pid})"
        name = record.get("name")
        if name is None:
            rejects.add(where, "missing field: name", record)
            continue
        if _bad_text(name):
            rejects.add(where, "invalid UTF-8 or non-text value in field: name", record)
            continue
        tracks = record.get("tracks")
        if not isinstance(tracks, list):
            rejects.add(where, "missing field: tracks (a list is required)", record)
            continue
        if not tracks:
            rejects.add(where, "empty playlist: no tracks", record)
            continue
        if pid in seen_pids:
            rejects.add(where, "duplicate pid within the file", record)
            continue
        seen_pids.add(pid)
        key = f"mpd:{pid}"
        kept = 0
        for position, entry in enumerate(tracks):
            reason = _entry_problem(entry)
            if reason:
                rejects.add(f"{where}.tracks[{position}]", reason, entry)
                continue
            pos = entry.get("pos", position)
            en_rows["playlist_key"].append(key)
            en_rows["position"].append(pos if isinstance(pos, int) else position)
            uri = entry["track_uri"]
            en_rows["track_key"].append(uri)
            tr_rows["source_key"].append(uri)
            tr_rows["spotify_uri"].append(uri)
            tr_rows["isrc"].append(None)
            tr_rows["mbid"].append(None)
            tr_rows["title"].append(entry["track_name"])
            tr_rows["artist_credit"].append(entry["artist_name"])
            tr_rows["artist_uri"].append(entry.get("artist_uri"))
            tr_rows["album_title"].append(entry.get("album_name"))
            tr_rows["album_uri"].append(entry.get("album_uri"))
            tr_rows["album_type"].append(None)
            tr_rows["release_year"].append(None)
            duration = entry.get("duration_ms")
            tr_rows["duration_ms"].append(duration if isinstance(duration, int) and duration > 0 else None)
            kept += 1
        if kept == 0:
            # Every entry was rejected: the playlist itself has nothing to offer.
            rejects.add(
                where,
                "empty playlist: every track entry was rejected",
                {k: v for k, v in record.items() if k != "tracks"},
            )
            continue
        description = record.get("description")
        pl_rows["source_key"].append(key)
        pl_rows["name"].append(name)
        pl_rows["description"].append(
            description if isinstance(description, str) and _INVALID_MARK not in description else None
        )
        followers = record.get("num_followers")
        pl_rows["num_followers"].append(followers if isinstance(followers, int) else None)
        collaborative = record.get("collaborative")
        pl_rows["collaborative"].append(
            collaborative
            if isinstance(collaborative, bool)
            else (collaborative == "true" if isinstance(collaborative, str) else None)
        )
        modified = record.get("modified_at")
        pl_rows["modified_at"].append(
            datetime.fromtimestamp(modified, UTC) if isinstance(modified, int | float) else None
        )
        pl_rows["num_tracks"].append(kept)
    return ParsedSlice(pl_rows, tr_rows, en_rows, problem)


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "track entry is not a JSON object"
    uri = entry.get("track_uri")
    if uri is None:
        return "missing field: track_uri"
    if _bad_text(uri) or not uri.startswith(_URI_PREFIX) or len(uri) != 36 or not uri[14:].isalnum():
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
) -> IngestReport:
    """Ingest MPD slices into the catalog (idempotent, resumable at file granularity)."""
    report = IngestReport(source=SOURCE)
    progress = progress or Progress.quiet()
    pending: list[tuple[SliceInput, str, ParsedSlice, batches.RejectLog]] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending_rows
        if not pending:
            return
        with engine.begin() as conn:
            batch_ids = []
            for item, checksum, parsed, log in pending:
                batch_id = batches.open_batch(conn, SOURCE, item.location, checksum)
                batch_ids.append(batch_id)
                for row in log.rows:
                    row["batch_id"] = batch_id
                parsed.playlists["batch_id"] = [batch_id] * len(parsed.playlists["source_key"])
            chunk = build_chunk(
                raw_tracks_frame(_concat([p.tracks for _, _, p, _ in pending])),
                playlist_frame(_concat([p.playlists for _, _, p, _ in pending])),
                pl.DataFrame(
                    _concat([p.entries for _, _, p, _ in pending]),
                    schema={"playlist_key": pl.String, "position": pl.Int32, "track_key": pl.String},
                ),
                pl.concat([log.frame() for _, _, _, log in pending]),
            )
            merge_chunk(conn, chunk, namespace=namespace)
            for batch_id, (_, _, parsed, log) in zip(batch_ids, pending, strict=True):
                batches.close_batch(
                    conn,
                    batch_id,
                    loaded=parsed.n_entries,
                    rejected=len(log.rows),
                    detail={
                        "playlists": len(parsed.playlists["source_key"]),
                        "entries": parsed.n_entries,
                        "problem": parsed.problem,
                    },
                )
        for _, _, parsed, log in pending:
            report.add_loaded(playlists=len(parsed.playlists["source_key"]), playlist_tracks=parsed.n_entries)
            report.add_rejects(log)
        pending.clear()
        pending_rows = 0

    inputs = list(iter_inputs(paths))
    task = progress.start("ingest mpd", total=len(inputs))
    for item in inputs:
        report.inputs += 1
        try:
            data = item.read()
        except (OSError, EOFError, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
            report.unreadable.append(f"{item.location}: cannot be read ({exc})")
            _reject_input(engine, item.location, f"unreadable input: {exc}")
            progress.advance(task)
            continue
        checksum = hashlib.sha256(data).hexdigest()
        with engine.connect() as conn:
            done = batches.find_done_batch(conn, SOURCE, item.location, checksum)
        if done is not None:
            report.skipped += 1
            progress.advance(task)
            continue
        log = batches.RejectLog(SOURCE)
        try:
            parsed = parse_slice(item.location, data, log)
        except InputError as exc:
            report.unreadable.append(str(exc))
            _reject_input(engine, item.location, str(exc).split(": ", 1)[-1], data[:2048])
            progress.advance(task)
            continue
        pending.append((item, checksum, parsed, log))
        pending_rows += parsed.n_entries
        if pending_rows >= batch_rows:
            flush()
        progress.advance(task)
    flush()
    progress.stop()
    return report


def _concat(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for part in parts:
        for key, values in part.items():
            out.setdefault(key, []).extend(values)
    return out


def _reject_input(engine: Engine, location: str, reason: str, raw: Any = None) -> None:
    log = batches.RejectLog(SOURCE)
    log.add(location, reason, raw)
    with engine.begin() as conn:
        log.flush(conn)
