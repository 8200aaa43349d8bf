"""Likes and dislikes: one opinion per user and track, the latest wins, bad input is a named error."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from recsys.catalog.feedback import (
    DISLIKE,
    LIKE,
    feedback_counts,
    record_feedback,
    remove_feedback,
    user_feedback,
)
from recsys.catalog.queries import catalog_stats
from recsys.catalog.schema import Feedback, Track
from recsys.errors import InputError, NotFoundError


def add_tracks(engine: sa.Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        return [
            conn.execute(
                sa.insert(Track)
                .values(
                    source_key=f"t:{i}",
                    title=f"Song {i}",
                    title_key=f"song {i}",
                    artist_name="Someone",
                    recording_key=f"someone|song {i}",
                )
                .returning(Track.id)
            ).scalar_one()
            for i in range(count)
        ]


def rows(engine: sa.Engine) -> list[tuple[str, int, int, str | None]]:
    with engine.connect() as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                sa.select(Feedback.user_name, Feedback.track_id, Feedback.rating, Feedback.context).order_by(
                    Feedback.user_name, Feedback.track_id
                )
            )
        ]


def test_the_latest_opinion_wins_one_row_per_user_and_track(catalog_engine: sa.Engine) -> None:
    a, b, c = add_tracks(catalog_engine, 3)
    record_feedback(catalog_engine, user="ana", track_id=a, rating=LIKE, context="continue:playlist:1")
    record_feedback(catalog_engine, user="ana", track_id=b, rating=DISLIKE)
    with catalog_engine.connect() as conn:
        first_created = conn.execute(
            sa.select(Feedback.created_at).where(Feedback.track_id == a)
        ).scalar_one()
    record_feedback(catalog_engine, user=" ana ", track_id=a, rating=DISLIKE, context="similar:track:3")
    record_feedback(catalog_engine, user="bo", track_id=a, rating=LIKE)
    assert rows(catalog_engine) == [
        ("ana", a, DISLIKE, "similar:track:3"),
        ("ana", b, DISLIKE, None),
        ("bo", a, LIKE, None),
    ]
    with catalog_engine.connect() as conn:
        created, updated = conn.execute(
            sa.select(Feedback.created_at, Feedback.updated_at).where(
                Feedback.user_name == "ana", Feedback.track_id == a
            )
        ).one()
    assert created == first_created and updated > created
    # the latest opinion first
    assert list(user_feedback(catalog_engine, user="ana").items()) == [(a, DISLIKE), (b, DISLIKE)]
    assert user_feedback(catalog_engine, user="bo") == {a: LIKE}
    assert user_feedback(catalog_engine, user="nobody") == {}
    assert c not in user_feedback(catalog_engine, user="ana")
    with catalog_engine.connect() as conn:
        assert feedback_counts(conn) == {"likes": 1, "dislikes": 2, "users": 2}
        assert catalog_stats(conn)["feedback"] == 3

    remove_feedback(catalog_engine, user="ana ", track_id=a)
    remove_feedback(catalog_engine, user="ana", track_id=c)  # nothing to remove: no error
    remove_feedback(catalog_engine, user="ana", track_id=2**70)
    assert user_feedback(catalog_engine, user="ana") == {b: DISLIKE}
    with catalog_engine.connect() as conn:
        assert feedback_counts(conn) == {"likes": 1, "dislikes": 1, "users": 2}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"user": "   "}, InputError, "user name is empty"),
        ({"user": "x" * 129}, InputError, "at most 128"),
        ({"user": None}, InputError, "user must be a name"),
        ({"rating": 0}, InputError, "rating must be 1"),
        ({"rating": 2}, InputError, "rating must be 1"),
        ({"rating": True}, InputError, "rating must be 1"),
        ({"track_id": "1"}, InputError, "track id must be an integer"),
        ({"context": "c" * 256}, InputError, "at most 255"),
        ({"track_id": 987654}, NotFoundError, "no track 987654 in the catalog"),
        ({"track_id": -1}, NotFoundError, "no track -1"),
        ({"track_id": 2**70}, NotFoundError, f"no track {2**70}"),
    ],
)
def test_bad_feedback_is_a_named_error_and_writes_nothing(
    catalog_engine: sa.Engine, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    (track,) = add_tracks(catalog_engine, 1)
    call = {"user": "ana", "track_id": track, "rating": LIKE, **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(")):
        record_feedback(catalog_engine, **call)  # type: ignore[arg-type]
    assert rows(catalog_engine) == []


def test_hostile_names_are_stored_as_given(catalog_engine: sa.Engine) -> None:
    track, other = add_tracks(catalog_engine, 2)
    names = ["'; DROP TABLE feedback; --", "<script>alert(1)</script>", "Zoë ✓ 名前", "x" * 128]
    for name in names:
        record_feedback(catalog_engine, user=name, track_id=track, rating=LIKE)
    record_feedback(catalog_engine, user=names[0], track_id=other, rating=DISLIKE)
    assert {n: user_feedback(catalog_engine, user=n) for n in names} == {
        names[0]: {other: DISLIKE, track: LIKE},
        names[1]: {track: LIKE},
        names[2]: {track: LIKE},
        names[3]: {track: LIKE},
    }


def test_catalog_stats_shows_feedback(catalog_engine: sa.Engine, catalog_url: str) -> None:
    a, b = add_tracks(catalog_engine, 2)
    record_feedback(catalog_engine, user="ana", track_id=a, rating=LIKE)
    record_feedback(catalog_engine, user="ana", track_id=b, rating=DISLIKE)
    record_feedback(catalog_engine, user="bo", track_id=b, rating=DISLIKE)
    runner = CliRunner()
    env = {"RECSYS_DATABASE_URL": catalog_url}
    counts = json.loads(runner.invoke(app, ["catalog", "stats", "--json"], env=env).output)
    assert counts["feedback"] == 3 and counts["tracks"] == 2
    text = runner.invoke(app, ["catalog", "stats"], env=env)
    assert text.exit_code == 0, text.output
    lines = {" ".join(line.split()[:-1]): line.split()[-1] for line in text.output.splitlines()}
    assert lines["likes"] == "1" and lines["dislikes"] == "2" and lines["feedback users"] == "2"


def test_opinions_given_at_once_from_several_threads_keep_one_row(catalog_engine: sa.Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (track,) = add_tracks(catalog_engine, 1)
    ratings = [LIKE, DISLIKE] * 6
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(lambda r: record_feedback(catalog_engine, user="ana", track_id=track, rating=r), ratings)
        )
    assert [(u, t) for u, t, _, _ in rows(catalog_engine)] == [("ana", track)]
