"""api_key: the keys of the HTTP API, stored as hashes, with their rate limits and revocation

Programs reach the catalog through `recsys serve` with a key made by `recsys api-key
create NAME`. Only the SHA-256 of a key's secret is kept (the secret is shown once,
when it is made), beside the key's own rate limit where it has one and the time it
was revoked, so that a revoked key is told apart from one that never existed.

Revision ID: 0007_api_key
Revises: 0006_pipeline_step
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_api_key"
down_revision: str | None = "0006_pipeline_step"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("rate_per_s", sa.Float(), nullable=True),
        sa.Column("burst", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("name", name="uq_api_key_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_key_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_key")
