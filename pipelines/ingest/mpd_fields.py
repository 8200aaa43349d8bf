"""What each field of an MPD slice may hold, and the reject reason of a value that does not.

Shared by the three slice parsers (:mod:`pipelines.ingest.mpd_parse`): a value no
column can hold or that is not what its field says (a ``modified_at`` outside
1970..2100, a ``num_followers`` or ``duration_ms`` that is not a whole number a
32-bit column holds, a ``collaborative`` that is not true or false, an artist or album
URI that is not one) is stored as null, with a reject row; a name longer than
``max_name_chars`` is cut, with a reject row.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeGuard

from pipelines.ingest.normalize import SPOTIFY_TRACK_URI, name_cut_reason

# Bytes that are not UTF-8 are decoded to this noncharacter (never found in real text), so that
# only the records they touch are rejected; a literal U+FFFD in the data is legitimate text.
INVALID_MARK = "\U0010fffe"
TRACK_URI = re.compile(SPOTIFY_TRACK_URI)
ARTIST_URI_PATTERN = r"^spotify:artist:[0-9A-Za-z]{22}$"
ALBUM_URI_PATTERN = r"^spotify:album:[0-9A-Za-z]{22}$"
_URI_PATTERNS = {"artist_uri": re.compile(ARTIST_URI_PATTERN), "album_uri": re.compile(ALBUM_URI_PATTERN)}
# The largest value of the catalog's integer columns (num_followers, duration_ms: 32 bits).
INT32_MAX = 2**31 - 1


def bad_text(value: Any) -> bool:
    return not isinstance(value, str) or INVALID_MARK in value


# What keys.clean_text removes or turns into spaces: a name of these alone is empty.
BLANK = r"^[\s\p{Cc}[\p{Cf}--[\x{200C}\x{200D}]]]*$"


def _blank(value: str) -> bool:
    """Whether ``value`` is empty once cleaned (``keys.clean_text``): whitespace, control and
    invisible format characters only (the joiners U+200C and U+200D count as text)."""
    for char in value:
        if char in "\u200c\u200d" or not (char.isspace() or unicodedata.category(char) in ("Cc", "Cf")):
            return False
    return True


# modified_at: seconds since 1970, before 2100-01-01 (a range both databases store).
EPOCH_END = 4_102_444_800


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


def timestamp_problem(value: Any) -> str | None:
    """Why a playlist's ``modified_at`` cannot be stored (it is then null); None when it can, or is absent."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if 0 <= value < EPOCH_END:  # false for NaN too
        return None
    return (
        f"invalid modified_at: {_shown(value)} is not a time in seconds between 1970 and 2100; stored as null"
    )


def follower_count(value: Any) -> int | None:
    """A playlist's ``num_followers``: a whole number a 32-bit column holds; None otherwise."""
    return value if type(value) is int and 0 <= value <= INT32_MAX else None


def _count_problem(value: Any) -> str | None:
    if value is None or follower_count(value) is not None:
        return None
    return (
        f"invalid num_followers: {_shown(value)} is not a whole number between 0 and {INT32_MAX:,}; "
        "stored as null"
    )


def collaborative_flag(value: Any) -> bool | None:
    """``collaborative``: a boolean, or the text true or false; None otherwise."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


def _flag_problem(value: Any) -> str | None:
    if value is None or collaborative_flag(value) is not None:
        return None
    return f"invalid collaborative: {_shown(value)} is not true or false; stored as null"


def is_pid(value: Any) -> TypeGuard[int]:
    return type(value) is int and -(2**63) <= value < 2**63


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and INVALID_MARK not in value else None


def track_duration(value: Any) -> int | None:
    """A track's ``duration_ms``: a positive whole number a 32-bit column holds; None otherwise."""
    return value if type(value) is int and 0 < value <= INT32_MAX else None


def uri_or_none(field: str, value: Any) -> str | None:
    """An ``artist_uri`` or ``album_uri`` that is one; None otherwise."""
    return value if type(value) is str and _URI_PATTERNS[field].fullmatch(value) else None


def playlist_problems(record: dict[str, Any], max_chars: int) -> list[str]:
    """What is cut or nulled of a playlist's own fields: a name or description too long, a bad time,
    follower count or collaborative flag."""
    problems = []
    for field in ("name", "description"):
        value = record.get(field)
        if isinstance(value, str) and len(value) > max_chars:
            problems.append(name_cut_reason(field, len(value), max_chars))
    for problem in (
        timestamp_problem(record.get("modified_at")),
        _count_problem(record.get("num_followers")),
        _flag_problem(record.get("collaborative")),
    ):
        if problem:
            problems.append(problem)
    return problems


def text_problems(entry: dict[str, Any], max_chars: int) -> list[str]:
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
    if album is not None and text_or_none(album) is None:
        problems.append("invalid UTF-8 or non-text value in field: album_name; stored as null")
    for field in ("artist_uri", "album_uri"):
        value = entry.get(field)
        if value is not None and uri_or_none(field, value) is None:
            shown = repr(value[:80]) if isinstance(value, str) else _shown(value)
            problems.append(f"invalid {field}: {shown}; stored as null")
    duration = entry.get("duration_ms")
    if duration is not None and track_duration(duration) is None:
        problems.append(
            f"invalid duration_ms: {_shown(duration)} is not a whole number of milliseconds between 1 and "
            f"{INT32_MAX:,}; stored as null"
        )
    return problems


def entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "track entry is not a JSON object"
    uri = entry.get("track_uri")
    if uri is None:
        return "missing field: track_uri"
    if bad_text(uri) or not TRACK_URI.fullmatch(uri):
        return f"invalid track_uri: {str(uri)[:80]!r}"
    for field in ("track_name", "artist_name"):
        value = entry.get(field)
        if value is None:
            return f"missing field: {field}"
        if bad_text(value):
            return f"invalid UTF-8 or non-text value in field: {field}"
    return None
