"""Point ids: how a catalog key becomes the id of a point, the same on every machine.

Point ids are stable: a catalog id is an integer and is used as the point id unchanged
(it must lie in ``0 ≤ id < 2**64``); any string key becomes the UUIDv5 of the string in
the fixed namespace :data:`POINT_NAMESPACE`, so the same key maps to the same point on
every machine and in every version. A string that already is a UUID is kept as it is.
"""

from __future__ import annotations

import uuid

PointKey = int | str
"""A point id as callers give it: an unsigned 64-bit integer or a string (mapped to a UUIDv5)."""

POINT_NAMESPACE = uuid.UUID("5b0e7c1a-52d4-4c1e-9d7f-7265637379ab")
"""Namespace of the UUIDv5 point ids made from string keys; never change it."""

MAX_POINT_ID = 2**64 - 1


def point_id(key: PointKey) -> int | str:
    """The point id of a catalog key: the integer itself, or the UUIDv5 string of a string key."""
    if isinstance(key, bool):
        raise ValueError(f"point key {key!r} is a bool, not an id")
    if isinstance(key, int):
        if not 0 <= key <= MAX_POINT_ID:
            raise ValueError(f"point key {key} is outside the unsigned 64-bit range")
        return key
    if isinstance(key, str):
        try:
            return str(uuid.UUID(key))  # already a UUID: keep it
        except ValueError:
            return str(uuid.uuid5(POINT_NAMESPACE, key))
    raise ValueError(f"point key {key!r} must be an int or a str")
