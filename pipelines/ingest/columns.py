"""The column mapping of table ingestion, and the row-level parsing shared by tables and listens.

Headers are matched case-insensitively, surrounding spaces ignored; for each field the
first accepted name present in the file is used. Every parser here is a Polars
expression over string columns, so a batch is validated in one vectorised pass and
each bad row gets exactly one reason.
"""

from __future__ import annotations

import polars as pl

from pipelines.ingest.guards import ID_TOO_LONG, MAX_ID_BYTES
from recsys.catalog import keys as k

# field -> accepted column names, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "id", "uri", "track_uri", "spotify_uri"),
    "title": ("title", "track_name", "name", "track_title", "track"),
    "artist": ("artist", "artist_name", "artists"),
    "album": ("album", "album_name"),
    "isrc": ("isrc",),
    "duration_ms": ("duration_ms",),
    "duration": ("duration", "duration_s", "length"),
    "year": ("year", "release_year"),
    "genres": ("genres", "genre"),
    "cultures": ("cultures", "culture"),
    "playlist_id": ("playlist_id", "pid"),
    "playlist_name": ("playlist_name", "playlist"),
    "position": ("position", "pos"),
    "user": ("user", "user_id", "userid"),
    "timestamp": ("timestamp", "time", "listened_at", "played_at"),
    "weight": ("weight", "count", "plays", "play_count"),
}
TRACK_FIELDS = (
    "track_id",
    "title",
    "artist",
    "album",
    "isrc",
    "duration_ms",
    "duration",
    "year",
    "genres",
    "cultures",
)
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "tracks": TRACK_FIELDS,
    "playlists": ("playlist_id", "playlist_name", "position", *TRACK_FIELDS),
    "listens": (
        "user",
        "track_id",
        "title",
        "artist",
        "album",
        "isrc",
        "duration_ms",
        "duration",
        "timestamp",
        "weight",
    ),
}
# Each entry is a set of alternatives: one of them must be present.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "tracks": (("title",), ("artist",)),
    "playlists": (("playlist_id",), ("title",), ("artist",)),
    "listens": (("user",), ("track_id", "artist")),
}

# A value of `duration` below this is seconds, at or above it milliseconds.
DURATION_MS_THRESHOLD = 20_000
ISRC_PATTERN = r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"
MBID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# The largest value of the catalog's integer columns (a track's duration in milliseconds).
INT32_MAX = 2**31 - 1
_SPOTIFY_ID = r"^spotify:track:([0-9A-Za-z]{22})$"
_SPOTIFY_URL = r"^https?://open\.spotify\.com/(?:intl-[a-z]+/)?track/([0-9A-Za-z]{22})"
_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)


def resolve_columns(header: list[str], kind: str) -> tuple[dict[str, str], str | None]:
    """(field -> column name in the file, the first missing required field's message or None)."""
    lookup: dict[str, str] = {}
    for name in header:
        lookup.setdefault(name.strip().lower(), name)
    found: dict[str, str] = {}
    for field in KIND_FIELDS[kind]:
        for alias in ALIASES[field]:
            if alias in lookup:
                found[field] = lookup[alias]
                break
    for alternatives in REQUIRED[kind]:
        if not any(f in found for f in alternatives):
            accepted = " or ".join(f"{f} ({', '.join(ALIASES[f])})" for f in alternatives)
            return found, f"missing column: {accepted}"
    return found, None


def blank(expr: pl.Expr) -> pl.Expr:
    """Trimmed text; empty becomes null."""
    out = expr.str.strip_chars()
    return pl.when(out.str.len_chars() > 0).then(out).otherwise(None)


def spotify_uri(expr: pl.Expr) -> pl.Expr:
    """``spotify:track:<id>`` from a URI or an open.spotify.com link; null otherwise."""
    value = expr.str.strip_chars()
    return pl.coalesce(
        pl.lit("spotify:track:") + value.str.extract(_SPOTIFY_ID, 1),
        pl.lit("spotify:track:") + value.str.extract(_SPOTIFY_URL, 1),
    )


def isrc(expr: pl.Expr) -> pl.Expr:
    """Upper case without separators ("us-rc1-76-07839" → "USRC17607839"); empty becomes null."""
    return blank(expr.str.to_uppercase().str.replace_all(r"[^0-9A-Z]", ""))


def duration_ms(ms: pl.Expr | None, duration: pl.Expr | None) -> pl.Expr:
    """Milliseconds from ``duration_ms`` or from ``duration`` (seconds, ``m:ss``, ``h:mm:ss``, or ms if large);
    null unless between 1 and ``INT32_MAX``."""
    from_ms = blank(ms).cast(pl.Float64, strict=False) if ms is not None else pl.lit(None, pl.Float64)
    if duration is None:
        from_duration = pl.lit(None, pl.Float64)
    else:
        value = blank(duration)
        parts = value.str.extract_groups(r"^(?:(\d+):)?(\d{1,2}):(\d{2}(?:\.\d+)?)$")
        clock = (
            parts.struct.field("1").cast(pl.Float64).fill_null(0) * 3600
            + parts.struct.field("2").cast(pl.Float64) * 60
            + parts.struct.field("3").cast(pl.Float64)
        ) * 1000
        number = value.cast(pl.Float64, strict=False)
        from_duration = pl.coalesce(
            clock,
            pl.when(number < DURATION_MS_THRESHOLD).then(number * 1000).otherwise(number),
        )
    value = pl.coalesce(from_ms, from_duration).round(0)
    # What the catalog's 32-bit column holds; anything else (0, 1e30, NaN) is no duration.
    return pl.when(value.is_between(1, INT32_MAX)).then(value).cast(pl.Int64)


def year(expr: pl.Expr) -> pl.Expr:
    """A leading four-digit year ("1999", "1999-05-01"); null when absent or outside 1000–2100."""
    value = expr.str.strip_chars().str.extract(r"^(\d{4})(?:\D|$)", 1).cast(pl.Int32)
    return pl.when(value.is_between(1000, 2100)).then(value).otherwise(None)


def json_list(expr: pl.Expr) -> pl.Expr:
    """``"rock|pop; jazz"`` → ``'["rock","pop","jazz"]'`` (split on | ; ,); null when nothing is left."""
    items = (
        k.clean_text(expr)
        .str.replace_all(r"\s*[|;,]\s*", "\x00")
        .str.split("\x00")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
    )
    quoted = items.list.eval(
        pl.lit('"') + pl.element().str.replace_all(r"\\", r"\\\\").str.replace_all('"', r"\"") + pl.lit('"')
    ).list.join(",")
    return pl.when(items.list.len() > 0).then(pl.lit("[") + quoted + pl.lit("]")).otherwise(None)


def timestamp(expr: pl.Expr) -> pl.Expr:
    """UTC time from ISO 8601 (naive means UTC) or Unix epoch seconds (or milliseconds above 10^11)."""
    value = blank(expr)
    epoch = value.cast(pl.Int64, strict=False)
    from_epoch = pl.from_epoch(
        pl.when(epoch > 100_000_000_000).then(epoch * 1000).otherwise(epoch * 1_000_000), time_unit="us"
    ).dt.replace_time_zone("UTC")
    parsed = [value.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _TIME_FORMATS]
    return pl.coalesce(from_epoch, *parsed)


def artist_source_key(name: pl.Expr) -> pl.Expr:
    """``name:<name key>``; a name made only of punctuation ("!!!") keys on its lower-cased self
    (bounded as the key would be)."""
    key = k.name_key(name)
    return pl.lit("name:") + pl.when(key.str.len_chars() > 0).then(key).otherwise(
        k.bounded(name.str.to_lowercase())
    )


def name_track_key(artist: pl.Expr, title: pl.Expr) -> pl.Expr:
    """``name:<artist key>|<title key>`` for a track known only by its names."""
    return pl.concat_str(
        [pl.lit("name:"), k.name_key(k.primary_artist(artist)), pl.lit("|"), k.name_key(title)]
    )


def too_long(expr: pl.Expr) -> pl.Expr:
    """Whether a (trimmed) id is longer than ``guards.MAX_ID_BYTES``: no index holds such an id."""
    return blank(expr).str.len_bytes() > MAX_ID_BYTES


def id_checks(fields: dict[str, pl.Expr]) -> list[tuple[pl.Expr, str]]:
    """One check per id field (name → its column): ``invalid <name>: longer than … not an id``."""
    return [
        (too_long(expr).fill_null(False), f"invalid {name}: {ID_TOO_LONG}") for name, expr in fields.items()
    ]


def quoted(expr: pl.Expr, limit: int = 80) -> pl.Expr:
    """A value for a reject reason: ``'abc'``, truncated."""
    return pl.lit("'") + expr.str.slice(0, limit) + pl.lit("'")
