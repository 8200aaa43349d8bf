"""pipeline_step: the steps of a run, their counts, metrics and input fingerprints

The nightly pipeline runs several steps (ingest, embed, train, evaluate, publish,
index) per run. Each step's row says what it saw and did, the gate's metrics and
the error line of a failed step, and digests the step's inputs, so that a step
whose inputs have not changed since its last success is skipped and a run after
a failure resumes at the failed step.

Revision ID: 0006_pipeline_step
Revises: 0005_run_owner
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_pipeline_step"
down_revision: str | None = "0005_run_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_step",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column(
            "run_id",
            _ID,
            sa.ForeignKey("pipeline_run.id", ondelete="CASCADE", name="fk_pipeline_step_run_id_pipeline_run"),
            nullable=False,
        ),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_step"),
    )
    op.create_index("ix_pipeline_step_run_id", "pipeline_step", ["run_id"])
    op.create_index("ix_pipeline_step_step_status", "pipeline_step", ["step", "status"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_step_step_status", table_name="pipeline_step")
    op.drop_index("ix_pipeline_step_run_id", table_name="pipeline_step")
    op.drop_table("pipeline_step")
