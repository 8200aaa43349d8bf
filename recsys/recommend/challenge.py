"""The Million Playlist Dataset Challenge: reading a challenge set, writing a submission.

A challenge set is one JSON object whose ``playlists`` each carry a ``pid``, an optional
``name``, ``num_samples``, ``num_holdouts`` and the seed ``tracks`` (objects with a
``track_uri``). A submission is a gzipped CSV: comment lines start with ``#``, the first
other line is ``team_info,<team>,<email>``, then one line per playlist: its ``pid`` and
exactly 500 distinct track URIs, best first, none of them a seed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import InputError

SUBMISSION_SIZE = 500
URI_PREFIX = "spotify:track:"


@dataclass(frozen=True)
class ChallengePlaylist:
    """One playlist of a challenge set: what is shown (title, seeds) and how many are hidden."""

    pid: int
    name: str | None
    seeds: tuple[str, ...]  # track URIs, in playlist order
    num_samples: int
    num_holdouts: int


def _playlist(record: Any, where: str) -> ChallengePlaylist:
    if not isinstance(record, dict):
        raise InputError(f"{where}: a playlist must be a JSON object")
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise InputError(f"{where}: 'pid' must be an integer, got {pid!r}")
    where = f"{where} (pid {pid})"
    name = record.get("name")
    if name is not None and not isinstance(name, str):
        raise InputError(f"{where}: 'name' must be a string, got {type(name).__name__}")
    tracks = record.get("tracks", [])
    if not isinstance(tracks, list):
        raise InputError(f"{where}: 'tracks' must be a list")
    seeds = []
    for i, track in enumerate(tracks):
        uri = track.get("track_uri") if isinstance(track, dict) else None
        if not isinstance(uri, str) or not uri.startswith(URI_PREFIX):
            raise InputError(f"{where}: track {i} has no Spotify track URI ({uri!r})")
        seeds.append(uri)
    counts = {}
    for field in ("num_samples", "num_holdouts"):
        value = record.get(field, len(seeds) if field == "num_samples" else 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{where}: {field!r} must be a count, got {value!r}")
        counts[field] = value
    if not seeds and not (name or "").strip():
        raise InputError(f"{where}: neither a name nor seed tracks: nothing to continue from")
    return ChallengePlaylist(pid, name, tuple(seeds), counts["num_samples"], counts["num_holdouts"])


def read_challenge_set(path: Path) -> list[ChallengePlaylist]:
    """The playlists of a challenge set file (``.json`` or ``.json.gz``); a bad record is one
    ``InputError`` naming the file, the playlist and the reason."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the challenge set: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON challenge set: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise InputError(f"{path}: a challenge set is an object with a 'playlists' list")
    playlists = [_playlist(p, f"{path}: playlist {i}") for i, p in enumerate(data["playlists"])]
    seen: set[int] = set()
    for p in playlists:
        if p.pid in seen:
            raise InputError(f"{path}: pid {p.pid} appears twice")
        seen.add(p.pid)
    return playlists


def submission_row(
    playlist: ChallengePlaylist,
    recommended: Iterable[str],
    fallback: Sequence[str],
    size: int = SUBMISSION_SIZE,
) -> list[str]:
    """``size`` distinct URIs for one playlist: the recommended ones first, then ``fallback``
    (a global ranking) until the line is full; seeds never."""
    taken = set(playlist.seeds)
    row: list[str] = []
    for uri in (*recommended, *fallback):
        if uri and uri not in taken:
            taken.add(uri)
            row.append(uri)
            if len(row) == size:
                return row
    raise InputError(
        f"playlist {playlist.pid}: only {len(row)} distinct non-seed tracks available, {size} needed"
    )


def write_submission(
    out: Path,
    rows: Iterable[tuple[int, Sequence[str]]],
    *,
    team: str,
    email: str,
) -> int:
    """Write the gzipped CSV (``team_info`` line, then ``pid,uri…`` lines); returns the lines written."""
    for field, value in (("team", team), ("email", email)):
        if not value.strip() or any(ch in value for ch in ",\n\r"):
            raise InputError(f"--{field} {value!r}: must be non-empty, without commas or line breaks")
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with gzip.open(out, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["team_info", team.strip(), email.strip()])
        for pid, uris in rows:
            writer.writerow([pid, *uris])
            lines += 1
    return lines


def read_submission(path: Path) -> tuple[list[str], list[list[str]]]:
    """The ``team_info`` fields and the playlist lines of a submission (comments skipped)."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    lines = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]
    if not lines:
        raise InputError(f"{path}: an empty submission")
    return lines[0], lines[1:]


def continue_challenge(
    playlists: Sequence[ChallengePlaylist],
    recommend: Callable[[ChallengePlaylist, int], list[str]],
    fallback: Sequence[str],
    *,
    size: int = SUBMISSION_SIZE,
) -> Iterable[tuple[int, list[str]]]:
    """(pid, URIs) per playlist, from ``recommend(playlist, n)`` completed by ``fallback``."""
    for playlist in playlists:
        yield playlist.pid, submission_row(playlist, recommend(playlist, size), fallback, size)
