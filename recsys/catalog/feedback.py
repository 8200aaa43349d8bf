"""Listeners' opinions of tracks: a like (+1) or a dislike (-1), one per user and track.

The latest opinion wins: recording a like over a dislike replaces it (``updated_at``
moves, ``created_at`` stays). Continuation reads a user's opinions with
:func:`user_feedback` and hands them to
:meth:`recsys.recommend.continuation.ContinuationService.recommend`, which leaves the
disliked tracks out, ranks their close neighbours lower and uses liked tracks as extra
seeds. Users are plain names (the interface that collects opinions says who is who);
they are compared after stripping surrounding whitespace.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from recsys.catalog.db import is_postgres
from recsys.catalog.schema import Feedback, Track
from recsys.errors import InputError, NotFoundError

LIKE: int = 1
DISLIKE: int = -1

MAX_USER = 128  # the column's size
MAX_CONTEXT = 255
_MAX_ID = 2**63 - 1


def user_name(user: object) -> str:
    """A user name as stored: stripped; ``InputError`` when empty or over 128 characters."""
    if not isinstance(user, str):
        raise InputError(f"user must be a name, got {type(user).__name__}")
    name = user.strip()
    if not name:
        raise InputError("user name is empty")
    if len(name) > MAX_USER:
        raise InputError(f"user name is {len(name)} characters long: at most {MAX_USER}")
    return name


def track_id_of(value: object) -> int:
    """A track id as an int (NumPy integers too); ``InputError`` for anything else."""
    if isinstance(value, bool):
        raise InputError(f"track id must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"track id must be an integer, got {value!r}") from None


def record_feedback(
    engine: Engine, *, user: str, track_id: int, rating: int, context: str | None = None
) -> None:
    """Store ``user``'s opinion of a track (``LIKE`` or ``DISLIKE``); the latest opinion wins.

    ``context`` says where it was given (``continue:playlist:12``). One row per user and
    track: an insert that meets the existing row updates its rating, context and
    ``updated_at`` in the same statement (``INSERT … ON CONFLICT DO UPDATE`` on SQLite and
    PostgreSQL), so two writers never make two rows. Raises ``InputError`` for an empty
    or over-long user name, a rating other than ±1 or an over-long context, and
    ``NotFoundError`` naming the id when the track is not in the catalog.
    """
    name = user_name(user)
    track = track_id_of(track_id)
    if isinstance(rating, bool) or rating not in (LIKE, DISLIKE):
        raise InputError(f"rating must be {LIKE} (like) or {DISLIKE} (dislike), got {rating!r}")
    if context is not None and len(context) > MAX_CONTEXT:
        raise InputError(f"feedback context is {len(context)} characters long: at most {MAX_CONTEXT}")
    now = datetime.now(UTC)
    values = {
        "user_name": name,
        "track_id": track,
        "rating": int(rating),
        "context": context,
        "created_at": now,
        "updated_at": now,
    }
    insert = (postgresql.insert if is_postgres(engine) else sqlite.insert)(Feedback).values(**values)
    stmt = insert.on_conflict_do_update(
        index_elements=[Feedback.user_name, Feedback.track_id],
        set_={"rating": insert.excluded.rating, "context": insert.excluded.context, "updated_at": now},
    )
    missing = NotFoundError(f"no track {track} in the catalog")
    if not 0 < track <= _MAX_ID:
        raise missing
    try:
        with engine.begin() as conn:
            if conn.execute(select(Track.id).where(Track.id == track)).first() is None:
                raise missing
            conn.execute(stmt)
    except IntegrityError as exc:  # the track went between the check and the write
        raise missing from exc


def remove_feedback(engine: Engine, *, user: str, track_id: int) -> None:
    """Forget ``user``'s opinion of a track (nothing happens when there is none)."""
    name = user_name(user)
    track = track_id_of(track_id)
    if not 0 < track <= _MAX_ID:
        return
    with engine.begin() as conn:
        conn.execute(delete(Feedback).where(Feedback.user_name == name, Feedback.track_id == track))


def user_feedback(engine: Engine, *, user: str) -> dict[int, int]:
    """``user``'s opinions: track id → rating (``LIKE`` or ``DISLIKE``), the latest given first."""
    name = user_name(user)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Feedback.track_id, Feedback.rating)
            .where(Feedback.user_name == name)
            .order_by(Feedback.updated_at.desc(), Feedback.id.desc())
        ).all()
    return {int(track): int(rating) for track, rating in rows}


def feedback_counts(conn: Connection) -> dict[str, int]:
    """How many likes and dislikes are stored, and from how many users."""
    likes, dislikes, users = conn.execute(
        select(
            func.count(case((Feedback.rating == LIKE, 1))),
            func.count(case((Feedback.rating == DISLIKE, 1))),
            func.count(func.distinct(Feedback.user_name)),
        )
    ).one()
    return {"likes": int(likes), "dislikes": int(dislikes), "users": int(users)}
