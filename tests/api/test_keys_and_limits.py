"""The keys' store (SQLite and PostgreSQL) and the token buckets, without a server."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from recsys.api.limits import RateLimiter, retry_after
from recsys.catalog.api_keys import check_key, create_key, list_keys, revoke_key
from recsys.errors import InputError, NotFoundError


def test_a_key_is_checked_by_its_hash_revoked_and_made_again(catalog_engine: sa.Engine) -> None:
    secret = create_key(catalog_engine, "media-server", rate_per_s=2.5, burst=5)
    found = check_key(catalog_engine, secret)
    assert (found.name, found.revoked, found.rate_per_s, found.burst) == ("media-server", False, 2.5, 5)
    with catalog_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT name, key_hash FROM api_key")).all()
    assert stored == [("media-server", hashlib.sha256(secret.encode()).hexdigest())]
    assert check_key(catalog_engine, secret + "x").name is None
    assert check_key(catalog_engine, "").name is None

    with pytest.raises(InputError, match="revoke it first"):
        create_key(catalog_engine, "media-server")
    revoke_key(catalog_engine, "media-server")
    revoke_key(catalog_engine, "media-server")  # again: nothing changes
    assert check_key(catalog_engine, secret).revoked
    assert list_keys(catalog_engine)[0].revoked_at is not None

    renewed = create_key(catalog_engine, "media-server")
    assert renewed != secret
    assert check_key(catalog_engine, secret).name is None  # the old secret is gone with its hash
    again = check_key(catalog_engine, renewed)
    assert (again.name, again.revoked, again.rate_per_s) == ("media-server", False, None)


def test_key_names_and_limits_are_checked(catalog_engine: sa.Engine) -> None:
    for bad in ("", " ", "has space", "-lead", "x" * 65, "ümlaut"):
        with pytest.raises(InputError, match="key name"):
            create_key(catalog_engine, bad)
    with pytest.raises(InputError, match="rate"):
        create_key(catalog_engine, "k", rate_per_s=0)
    with pytest.raises(InputError, match="burst"):
        create_key(catalog_engine, "k", burst=0)
    with pytest.raises(NotFoundError, match="no API key named 'ghost'"):
        revoke_key(catalog_engine, "ghost")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes every 0.5 s
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.25
    assert limiter.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.take("a") == 0.0
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, never beyond
    assert limiter.take("c", rate=0.1, burst=1) == 0.0
    assert limiter.take("c", rate=0.1, burst=1) == pytest.approx(10.0)  # a key's own rate


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.01, 1.0, 1.2, 9.99)] == ["1", "1", "2", "10"]
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
