"""playlist_track and track_artist without foreign keys

The two fact tables are written in bulk (tens of millions of rows for the whole
Million Playlist Dataset). PostgreSQL checks a foreign key with one trigger call
per row and per constraint, which tripled the cost of loading playlist entries.
The bulk loader (``recsys.catalog.merges``) guarantees the references by
construction: it resolves every playlist and track id from the rows it has just
merged in the same transaction and refuses a chunk whose entries name an unknown
key. Deleting a playlist or a track therefore deletes its rows here explicitly.

Revision ID: 0002_mpdperf
Revises: 0001_catalog
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_mpdperf"
down_revision: str | None = "0001_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = {
    "playlist_track": (
        ("fk_playlist_track_playlist_id_playlist", "playlist", ["playlist_id"], "CASCADE"),
        ("fk_playlist_track_track_id_track", "track", ["track_id"], None),
    ),
    "track_artist": (
        ("fk_track_artist_artist_id_artist", "artist", ["artist_id"], None),
        ("fk_track_artist_track_id_track", "track", ["track_id"], "CASCADE"),
    ),
}


def upgrade() -> None:
    for table, constraints in _DROPPED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _, _, _ in constraints:
                batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, constraints in _DROPPED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, referred, columns, ondelete in constraints:
                batch_op.create_foreign_key(name, referred, columns, ["id"], ondelete=ondelete)
