"""end-user quarantine: digest claims, digest preferences, single-use action links

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("reply", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("recipient", "period"),
    )
    op.create_index("ix_digest_runs_state", "digest_runs", ["state"])
    op.create_table(
        "digest_prefs",
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("recipient"),
    )
    op.create_table(
        "action_link_uses",
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("link_id"),
    )
    op.create_index("ix_action_link_uses_used_at", "action_link_uses", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_action_link_uses_used_at", table_name="action_link_uses")
    op.drop_table("action_link_uses")
    op.drop_table("digest_prefs")
    op.drop_index("ix_digest_runs_state", table_name="digest_runs")
    op.drop_table("digest_runs")
