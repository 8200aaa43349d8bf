"""Payload filters over the ``tracks`` collection, as people write them (``culture=indian``).

Shared by every track query that filters: similar tracks, words → music, music for a video.
"""

from __future__ import annotations

from collections.abc import Mapping

from recsys.errors import ConfigError
from recsys.vectorstore.base import Condition, Filter, Match, MatchAny
from recsys.vectorstore.collections import TRACK_INDEXES
from recsys.vectorstore.spec import FieldType

FILTER_FIELDS = {
    "culture": "cultures",
    "cultures": "cultures",
    "genre": "genres",
    "genres": "genres",
    "artist": "artist",
    "artist_id": "artist_id",
    "year": "year",
    "duration_ms": "duration_ms",
}
"""What ``--filter FIELD=VALUE`` accepts, and the ``tracks`` payload field each one matches."""


def track_filter(filters: Mapping[str, str] | None) -> Filter | None:
    """``{field: value}`` → the store filter that keeps only tracks matching every one.

    Fields are the indexed payload fields of ``tracks`` (singular names allowed for the
    list fields: ``culture``, ``genre``); a list field matches when any element does.
    Integer fields (``year``, ``artist_id``, ``duration_ms``) compare as numbers;
    keyword fields ignore the usual capitalisations (``indian``, ``Indian``, ``INDIAN``).
    """
    conditions: list[Condition] = []
    for name, value in (filters or {}).items():
        key = FILTER_FIELDS.get(name.strip().lower())
        if key is None:
            raise ConfigError(
                f"cannot filter on {name!r}: the fields are {', '.join(sorted(set(FILTER_FIELDS)))}"
            )
        value = value.strip()
        if TRACK_INDEXES[key] is FieldType.INTEGER:
            try:
                conditions.append(Match(key, int(value)))
            except ValueError:
                raise ConfigError(f"filter {name}={value!r}: {name} is a whole number") from None
        else:
            spellings = dict.fromkeys(
                [value, value.lower(), value.capitalize(), value.title(), value.upper()]
            )
            conditions.append(MatchAny(key, tuple(spellings)))
    return Filter.where(*conditions) if conditions else None
