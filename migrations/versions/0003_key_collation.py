"""identifier columns compared byte by byte on PostgreSQL

Source keys, Spotify URIs, ISRCs and match keys are matched, never sorted for
people. Under the database's locale every comparison in their unique and
secondary indexes went through the locale's collation, and building those
indexes could not use abbreviated sort keys; the "C" collation compares bytes.
Only the indexes on these columns are rebuilt: the tables are not rewritten.
SQLite compares bytes already and is left as it is.

Revision ID: 0003_key_collation
Revises: 0002_mpdperf
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_key_collation"
down_revision: str | None = "0002_mpdperf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("artist", "source_key", "TEXT"),
    ("artist", "name_key", "TEXT"),
    ("album", "source_key", "TEXT"),
    ("track", "source_key", "TEXT"),
    ("track", "spotify_uri", "VARCHAR(64)"),
    ("track", "isrc", "VARCHAR(16)"),
    ("track", "recording_key", "TEXT"),
    ("playlist", "source_key", "TEXT"),
)


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, type_ in _COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_} COLLATE "{collation}"')


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
