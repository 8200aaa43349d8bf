"""feedback: likes and dislikes of tracks per user

A curator's thumbs up or down on a recommended track is kept, one opinion per
user and track (the latest wins), so that continuation can leave disliked
tracks out and rank their close neighbours lower, and so that the opinions
survive a restart of the interface that collected them.

Revision ID: 0004_feedback
Revises: 0003_key_collation
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_feedback"
down_revision: str | None = "0003_key_collation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column(
            "track_id",
            _ID,
            sa.ForeignKey("track.id", ondelete="CASCADE", name="fk_feedback_track_id_track"),
            nullable=False,
        ),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("context", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("user_name", "track_id", name="uq_feedback_user_name_track_id"),
    )
    op.create_index("ix_feedback_track_id", "feedback", ["track_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_track_id", table_name="feedback")
    op.drop_table("feedback")
