"""user reports of misjudged messages (phish, spam, not junk) and their triage

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        # Not a foreign key: a report stays readable after the retention purge deleted its message.
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("reporter", sa.String(length=320), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=True),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("triaged_by", sa.String(length=320), nullable=True),
        sa.Column("triaged_at", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_pk", "reporter", "label",
                            name="uq_reports_message_reporter_label"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_time", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_reports_state", ["state", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_state")
        batch_op.drop_index("ix_reports_time")
    op.drop_table("reports")
