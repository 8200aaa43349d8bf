"""Keys of the HTTP API: made, revoked and checked here; only their hashes are stored.

A key is a name (``media-server``) and a random secret (``rsk_`` and 43 URL-safe
characters, 256 random bits). :func:`create_key` returns the secret once; the catalog
keeps its SHA-256 (a secret of 256 random bits needs no slow hash: nothing can be
guessed from its digest), so a copy of the database gives no key away. A key may carry
its own rate limit (requests per second and a burst); otherwise the server's settings
apply. A revoked key stays in the table, so that a request bearing it is told it was
revoked; making a key of that name again gives it a new secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update

from recsys.catalog.schema import ApiKey
from recsys.errors import InputError, NotFoundError

PREFIX = "rsk_"
MAX_SECRET_CHARS = 128  # a presented secret longer than this is refused unhashed
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KeyCheck:
    """What the catalog says of a presented secret: whose key it is and its limits, or why it is refused."""

    name: str | None  # None: no key has this secret
    revoked: bool
    rate_per_s: float | None
    burst: int | None


def key_name(name: object) -> str:
    """A key name as stored; ``InputError`` unless it is 1–64 letters, digits, ``.``, ``_`` or ``-``."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise InputError(
            f"key name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name.strip()


def digest(secret: str) -> str:
    """The stored form of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    engine: Engine, name: str, *, rate_per_s: float | None = None, burst: int | None = None
) -> str:
    """Make the key ``name`` and return its secret (shown once: only its hash is kept).

    ``rate_per_s`` and ``burst`` give the key a rate limit of its own. Raises ``InputError``
    when a key of that name is in use (revoke it first) or a limit is not positive; a
    revoked key's name is taken over by the new key.
    """
    name = key_name(name)
    if rate_per_s is not None and not rate_per_s > 0:
        raise InputError(f"key {name}: its rate must be more than 0 requests per second, not {rate_per_s}")
    if burst is not None and burst < 1:
        raise InputError(f"key {name}: its burst must be at least 1 request, not {burst}")
    secret = PREFIX + secrets.token_urlsafe(32)
    values = {
        "key_hash": digest(secret),
        "rate_per_s": rate_per_s,
        "burst": burst,
        "created_at": datetime.now(UTC),
        "revoked_at": None,
    }
    with engine.begin() as conn:
        held = conn.execute(select(ApiKey.id, ApiKey.revoked_at).where(ApiKey.name == name)).first()
        if held is None:
            conn.execute(insert(ApiKey).values(name=name, **values))
        elif held.revoked_at is None:
            raise InputError(f"a key named {name!r} exists: revoke it first (`recsys api-key revoke {name}`)")
        else:
            conn.execute(update(ApiKey).where(ApiKey.id == held.id).values(**values))
    return secret


def revoke_key(engine: Engine, name: str) -> None:
    """Revoke the key ``name``: requests bearing it are refused from now on.

    Raises ``NotFoundError`` when there is no such key; revoking a revoked key changes nothing.
    """
    name = key_name(name)
    with engine.begin() as conn:
        found = conn.execute(select(ApiKey.id).where(ApiKey.name == name)).first()
        if found is None:
            raise NotFoundError(f"no API key named {name!r}")
        conn.execute(
            update(ApiKey)
            .where(ApiKey.id == found.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )


def check_key(engine: Engine, secret: str) -> KeyCheck:
    """Whose key ``secret`` is (looked up by its hash), whether it was revoked, and its own limits."""
    if not secret or len(secret) > MAX_SECRET_CHARS:
        return KeyCheck(None, False, None, None)
    with engine.connect() as conn:
        row = conn.execute(
            select(ApiKey.name, ApiKey.revoked_at, ApiKey.rate_per_s, ApiKey.burst).where(
                ApiKey.key_hash == digest(secret)
            )
        ).first()
    if row is None:
        return KeyCheck(None, False, None, None)
    return KeyCheck(row.name, row.revoked_at is not None, row.rate_per_s, row.burst)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    created_at: datetime
    revoked_at: datetime | None
    rate_per_s: float | None
    burst: int | None


def list_keys(engine: Engine) -> list[KeyInfo]:
    """Every key (never a secret or a hash), by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ApiKey.name, ApiKey.created_at, ApiKey.revoked_at, ApiKey.rate_per_s, ApiKey.burst
            ).order_by(ApiKey.name)
        ).all()
    return [KeyInfo(r.name, r.created_at, r.revoked_at, r.rate_per_s, r.burst) for r in rows]
