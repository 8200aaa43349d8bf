"""A folder of audio files → ``audio_asset`` rows linked to catalog tracks.

The folder is walked recursively; every file with an audio extension is checksummed
(sha256), measured (format, sample rate, channels, duration: soundfile, or PyAV for
what soundfile cannot open, such as AAC/M4A) and its tags read (mutagen: title,
artist, album, ISRC, date, genre). It is linked to an existing track by ISRC, else by
normalised artist and title with durations within 3 s (when both are known), else a
track is created (``audio:<sha256>``, titled by its tag or its file name). Empty,
non-audio (whatever the extension says) and undecodable files are rejected with
their reason, as is a file whose path is too long to be indexed
(``guards.MAX_LOCATION_BYTES``); the others land. A tag longer than ``max_name_chars``
is cut, and a duration no track column holds is left out, each with a reject row.
A file already stored with the same bytes is left as it is; a file whose bytes
changed is measured and linked again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from pipelines.ingest.guards import InputLimits, location_problem, shorten
from pipelines.ingest.normalize import build_chunk, name_cut_reason, raw_tracks_frame
from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog import keys as k
from recsys.catalog.bulk_audio import DURATION_TOLERANCE_MS, known_assets, match_tracks, merge_assets
from recsys.catalog.db import write_transaction
from recsys.catalog.merges import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import InputError, RecordError

SOURCE = "audio-dir"
AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aac",
        ".aif",
        ".aiff",
        ".wma",
        ".mka",
    }
)
TAG_FIELDS = ("title", "artist", "album", "isrc", "date", "genre")
_INT32_MAX = 2**31 - 1  # track.duration_ms


@dataclass
class AudioFile:
    path: Path
    checksum: str
    size_bytes: int
    format: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    tag_error: str | None = None  # the file decodes but its tags could not be parsed

    @property
    def uri(self) -> str:
        return str(self.path)

    @property
    def isrc(self) -> str | None:
        value = "".join(ch for ch in self.tags.get("isrc", "").upper() if ch.isalnum())
        return value if len(value) == 12 and value[:2].isalpha() and value[5:].isdigit() else None

    @property
    def duration_ms(self) -> int | None:
        """The duration in milliseconds, when a track's 32-bit column holds it (a container may claim years)."""
        if not self.duration_s or not 0 < self.duration_s * 1000 <= _INT32_MAX:
            return None
        return round(self.duration_s * 1000)

    @property
    def year(self) -> int | None:
        date = self.tags.get("date", "")[:4]
        return int(date) if date.isdigit() and 1000 <= int(date) <= 2100 else None


def sha256_and_size(path: Path) -> tuple[str, int]:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()  # the bytes hashed


def measure(path: Path) -> tuple[str, int, int, float]:
    """(format, sample rate, channels, duration in seconds); RecordError when the file does not decode."""
    import soundfile  # deferred: libsndfile loads only when a folder of audio is ingested

    try:
        info = soundfile.info(str(path))
        with soundfile.SoundFile(str(path)) as handle:
            handle.read(1024, dtype="float32")  # the header alone does not prove the audio decodes
        if info.samplerate <= 0 or info.frames <= 0:
            raise RecordError("no audio frames")
        return info.format, int(info.samplerate), int(info.channels), info.frames / info.samplerate
    except (RuntimeError, soundfile.LibsndfileError, RecordError, ValueError) as first:
        sf_error = str(first).splitlines()[0][:160] if str(first) else type(first).__name__
    return _measure_av(path, sf_error)


def _measure_av(path: Path, sf_error: str) -> tuple[str, int, int, float]:
    import av  # deferred: PyAV's bundled FFmpeg loads only for a file soundfile cannot decode

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise RecordError(f"not an audio file: no audio stream (soundfile: {sf_error})")
            stream = streams[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            next(container.decode(stream), None)
            if not stream.rate or not duration:
                raise RecordError(
                    f"not a decodable audio file: no sample rate or duration (soundfile: {sf_error})"
                )
            return (
                stream.codec_context.name.upper(),
                int(stream.rate),
                int(stream.channels),
                duration,
            )
    except RecordError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise RecordError(
            f"not a decodable audio file (soundfile: {sf_error}; PyAV: {str(exc)[:160]})"
        ) from exc


def read_tags(path: Path) -> dict[str, str]:
    """The first value of each tag in TAG_FIELDS (mutagen's easy interface); {} when there are none."""
    import mutagen  # deferred: the tag reader loads only when a folder of audio is ingested

    try:
        tagged = mutagen.File(str(path), easy=True)
    except mutagen.MutagenError as exc:
        raise RecordError(f"unreadable tags: {str(exc)[:160]}") from exc
    if tagged is None or not tagged.tags:
        return {}
    out: dict[str, str] = {}
    for name in TAG_FIELDS:
        try:
            values = tagged.tags.get(name)
        except (KeyError, ValueError):
            values = None
        if values:
            text = str(values[0] if isinstance(values, list) else values).strip()
            if text:
                out[name] = text
    return out


def probe(path: Path, checksum: str, size: int) -> AudioFile:
    """Measure and read the tags of one file; RecordError with the reason when it is not usable."""
    if size == 0:
        raise RecordError("empty file")
    fmt, rate, channels, duration = measure(path)
    try:
        tags, tag_error = read_tags(path), None
    except RecordError as exc:
        tags, tag_error = {}, str(exc)
    return AudioFile(path, checksum, size, fmt, rate, channels, duration, tags, tag_error)


def bound(audio: AudioFile, max_name_chars: int, log: batches.RejectLog, batch_id: int) -> AudioFile:
    """``audio`` with each tag cut to ``max_name_chars`` characters; each cut, and a duration no
    track holds, is a reject row at the file."""
    for name, value in audio.tags.items():
        if len(value) > max_name_chars:
            log.add(
                str(audio.path), name_cut_reason(f"tag {name}", len(value), max_name_chars), batch_id=batch_id
            )
            audio.tags[name] = value[:max_name_chars]
    if audio.duration_s and audio.duration_ms is None:
        log.add(
            str(audio.path),
            f"duration of {audio.duration_s:.6g} s is longer than a track's duration may be; the track has none",
            batch_id=batch_id,
        )
    return audio


def walk(root: Path) -> tuple[list[Path], int]:
    """(audio files below ``root`` in a stable order, how many other files were passed over)."""
    if not root.exists():
        raise InputError(f"{root}: no such file or directory")
    if root.is_file():
        return [root.resolve()], 0
    files = sorted(p.resolve() for p in root.rglob("*") if p.is_file())
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")]
    return audio, len(files) - len(audio)


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _recording_key(artist: str | None, title: str | None) -> str | None:
    if not artist or not title:
        return None
    value = k.apply_one(k.recording_key, artist, title)
    return str(value) if value else None


class _Linker:
    """Assigns each probed file a track: an existing one, one created earlier in this run, or a new one."""

    def __init__(self) -> None:
        self.by_isrc: dict[str, str] = {}
        self.by_name: dict[str, list[tuple[int | None, str]]] = {}

    def local(self, isrc: str | None, name: str | None, duration: int | None) -> str | None:
        if isrc and isrc in self.by_isrc:
            return self.by_isrc[isrc]
        for known, key in self.by_name.get(name or "", []):
            if known is None or duration is None or abs(known - duration) <= DURATION_TOLERANCE_MS:
                return key
        return None

    def remember(self, isrc: str | None, name: str | None, duration: int | None, key: str) -> None:
        if isrc:
            self.by_isrc.setdefault(isrc, key)
        if name:
            self.by_name.setdefault(name, []).append((duration, key))


def ingest_audio_dir(
    engine: Engine,
    root: Path,
    *,
    chunk_files: int = 200,
    progress: Progress | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest the audio files below ``root`` (idempotent by file path and checksum).

    ``limits``: the settings' input limits (``max_name_chars`` for tags and titles).
    """
    limits = limits or InputLimits()
    report = IngestReport(source=SOURCE, inputs=1)
    progress = progress or Progress.quiet()
    problem = location_problem(str(root.resolve()))
    if problem:
        raise InputError(f"{shorten(str(root))}: {problem}")
    files, others = walk(root)
    if not files:
        raise InputError(f"{root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    if others:
        report.messages.append(f"{root}: {others} file(s) without an audio extension passed over")
    location = str(root.resolve())
    listing = hashlib.sha256()
    for path in files:
        stat = path.stat()
        listing.update(f"{path}\x00{stat.st_size}\x00{stat.st_mtime_ns}\n".encode())
    with write_transaction(engine) as conn:
        seen_before = batches.find_done_batch(conn, SOURCE, location, listing.hexdigest()) is not None
        batch_id = batches.open_batch(conn, SOURCE, location, listing.hexdigest())
    linker = _Linker()
    totals: Counter[str] = Counter()
    rejected = 0
    task = progress.start(f"ingest audio {root.name}", total=len(files))
    for group in _chunks(files, chunk_files):
        log = batches.RejectLog(SOURCE)
        with engine.connect() as conn:
            stored = known_assets(conn, [str(p) for p in group])
        probed: list[AudioFile] = []
        for path in group:
            progress.advance(task)
            try:
                problem = location_problem(str(path))
                if problem:
                    raise RecordError(f"{problem} (no index holds it)")
                checksum, size = sha256_and_size(path)
                if stored.get(str(path)) == checksum:
                    totals["unchanged"] += 1
                    continue
                probed.append(bound(probe(path, checksum, size), limits.max_name_chars, log, batch_id))
            except RecordError as exc:
                log.add(str(path), str(exc), batch_id=batch_id)
            except OSError as exc:
                log.add(str(path), f"unreadable file: {exc.strerror or exc}", batch_id=batch_id)
        with write_transaction(engine) as conn:
            counts = _load_group(conn, probed, linker, batch_id, log, limits.max_name_chars)
            for row in log.rows:  # the names build_chunk cut too
                row["batch_id"] = batch_id
            report.add_rejects(log)
            rejected += len(log.rows)
            log.flush(conn)
        totals.update(counts)
    progress.stop()
    unchanged = totals.pop("unchanged", 0)
    if unchanged:
        report.messages.append(f"{root}: {unchanged} file(s) unchanged since they were ingested")
    bad_isrc = totals.pop("invalid_isrc_tags", 0)
    if bad_isrc:
        report.messages.append(
            f"{root}: {bad_isrc} file(s) with an invalid ISRC tag (tag kept, not used to link)"
        )
    bad_tags = totals.pop("unreadable_tags", 0)
    if bad_tags:
        report.messages.append(f"{root}: {bad_tags} file(s) with unreadable tags (landed untagged)")
    report.add_loaded(**totals)
    if seen_before and not totals["audio_assets"]:
        report.skipped += 1  # the same listing, nothing changed: its batch row stays as it was
        return report
    with write_transaction(engine) as conn:
        batches.close_batch(
            conn,
            batch_id,
            loaded=totals["audio_assets"],
            rejected=rejected,
            detail={**totals, "unchanged": unchanged, "passed_over": others},
        )
    return report


def _load_group(
    conn: Any,
    probed: list[AudioFile],
    linker: _Linker,
    batch_id: int,
    log: batches.RejectLog,
    max_name_chars: int,
) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not probed:
        return counts
    names = [_recording_key(f.tags.get("artist"), f.tags.get("title")) for f in probed]
    candidates = pl.DataFrame(
        {
            "seq": list(range(len(probed))),
            "isrc": [f.isrc for f in probed],
            "recording_key": names,
            "duration_ms": [f.duration_ms for f in probed],
        }
    )
    matches = match_tracks(conn, candidates)
    new_tracks: dict[str, list[Any]] = {
        n: []
        for n in (
            "source_key",
            "isrc",
            "title",
            "artist_credit",
            "album_title",
            "release_year",
            "duration_ms",
        )
    }
    assets: list[dict[str, Any]] = []
    for seq, audio in enumerate(probed):
        if audio.tags.get("isrc") and audio.isrc is None:
            counts["invalid_isrc_tags"] += 1
        if audio.tag_error:
            counts["unreadable_tags"] += 1
        track_id, track_key = None, None
        if seq in matches:
            track_id, how = matches[seq]
            counts[f"linked_by_{how}"] += 1
        else:
            track_key = linker.local(audio.isrc, names[seq], audio.duration_ms)
            if track_key is not None:
                counts["linked_by_name"] += 1
            else:
                track_key = f"audio:{audio.checksum}"
                linker.remember(audio.isrc, names[seq], audio.duration_ms, track_key)
                new_tracks["source_key"].append(track_key)
                new_tracks["isrc"].append(audio.isrc)
                new_tracks["title"].append(audio.tags.get("title") or audio.path.stem)
                new_tracks["artist_credit"].append(audio.tags.get("artist"))
                new_tracks["album_title"].append(audio.tags.get("album"))
                new_tracks["release_year"].append(audio.year)
                new_tracks["duration_ms"].append(audio.duration_ms)
        assets.append(
            {
                "uri": audio.uri,
                "checksum": audio.checksum,
                "size_bytes": audio.size_bytes,
                "format": audio.format,
                "sample_rate": audio.sample_rate,
                "channels": audio.channels,
                "duration_s": audio.duration_s,
                "tags": json.dumps(
                    {**audio.tags, "error": audio.tag_error} if audio.tag_error else audio.tags,
                    ensure_ascii=False,
                ),
                "track_id": track_id,
                "track_key": track_key,
                "batch_id": batch_id,
            }
        )
    if new_tracks["source_key"]:
        chunk = build_chunk(raw_tracks_frame(new_tracks), log=log, max_name_chars=max_name_chars)
        merged = merge_chunk(conn, chunk, namespace=DEFAULT_NAMESPACE)
        counts["tracks_created"] += merged.get("tracks", 0)
    counts["audio_assets"] = merge_assets(conn, pl.DataFrame(assets, infer_schema_length=None))
    return counts
