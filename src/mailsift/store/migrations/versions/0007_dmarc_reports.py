"""DMARC aggregate reporting: recorded evaluations, report jobs, ingested reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dmarc_evaluations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.Column("policy_domain", sa.String(length=255), nullable=False),
        sa.Column("header_from", sa.String(length=255), nullable=False),
        sa.Column("envelope_from", sa.String(length=255), nullable=False),
        sa.Column("envelope_to", sa.String(length=255), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("dkim_aligned", sa.Boolean(), nullable=False),
        sa.Column("spf_aligned", sa.Boolean(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("auth", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("discovery", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dmarc_evaluations", schema=None) as batch_op:
        batch_op.create_index("ix_dmarc_evaluations_evaluated_at", ["evaluated_at"],
                              unique=False)
        batch_op.create_index("ix_dmarc_evaluations_domain_time",
                              ["policy_domain", "evaluated_at"], unique=False)
    op.create_table(
        "dmarc_report_jobs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("policy_domain", sa.String(length=255), nullable=False),
        sa.Column("period_begin", sa.Float(), nullable=False),
        sa.Column("period_end", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("report_id", sa.String(length=255), nullable=False),
        sa.Column("destinations", sa.Text(), nullable=False),
        sa.Column("sent_to", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("policy_domain", "period_begin", name="uq_dmarc_jobs_domain_period"),
    )
    with op.batch_alter_table("dmarc_report_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_dmarc_jobs_due", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "dmarc_ingested_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("org_name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("report_id", sa.String(length=255), nullable=False),
        sa.Column("policy_domain", sa.String(length=255), nullable=False),
        sa.Column("date_begin", sa.Float(), nullable=False),
        sa.Column("date_end", sa.Float(), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_name", "report_id", "policy_domain",
                            name="uq_dmarc_ingested_report"),
    )
    with op.batch_alter_table("dmarc_ingested_reports", schema=None) as batch_op:
        batch_op.create_index("ix_dmarc_ingested_reports_begin", ["date_begin"], unique=False)
    op.create_table(
        "dmarc_ingested_rows",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("report_pk", _ID, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("header_from", sa.String(length=255), nullable=False),
        sa.Column("envelope_from", sa.String(length=255), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("dkim_aligned", sa.Boolean(), nullable=False),
        sa.Column("spf_aligned", sa.Boolean(), nullable=False),
        sa.Column("dkim", sa.Text(), nullable=False),
        sa.Column("spf", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["report_pk"], ["dmarc_ingested_reports.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dmarc_ingested_rows", schema=None) as batch_op:
        batch_op.create_index("ix_dmarc_ingested_rows_report_pk", ["report_pk"], unique=False)
        batch_op.create_index("ix_dmarc_ingested_rows_day_from", ["day", "header_from"],
                              unique=False)


def downgrade() -> None:
    op.drop_table("dmarc_ingested_rows")
    op.drop_table("dmarc_ingested_reports")
    op.drop_table("dmarc_report_jobs")
    op.drop_table("dmarc_evaluations")
