"""quarantined originals in the database (the postgresql blob backend); incident outcomes
long enough for the reason a release failed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    # "failed: <recipient>: <why>" (up to 200 characters) did not fit in 32 on PostgreSQL
    with op.batch_alter_table("incident_messages") as batch:
        batch.alter_column("outcome", type_=sa.String(length=256),
                           existing_type=sa.String(length=32), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("incident_messages") as batch:
        batch.alter_column("outcome", type_=sa.String(length=32),
                           existing_type=sa.String(length=256), existing_nullable=False)
    op.drop_table("blobs")
