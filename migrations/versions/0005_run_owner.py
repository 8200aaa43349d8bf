"""pipeline_run records the host and process that runs it

A job killed with SIGKILL cannot mark its own run as ended. With the host and
process id beside the run, the next run (or ``recsys db status``) can tell a
run whose process is gone from one that is still going, and mark it so.

Revision ID: 0005_run_owner
Revises: 0004_feedback
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_run_owner"
down_revision: str | None = "0004_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.add_column(sa.Column("host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_column("pid")
        batch.drop_column("host")
