"""Initial schema: trace, findings, versions, releases, lists, holds, tokens, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 23:26:07.178208
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_action", "audit_log", ["action", "at"], unique=False)
    op.create_index("ix_audit_actor", "audit_log", ["actor", "at"], unique=False)
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)

    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("query_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("released_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "list_entries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=325), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "value", "action", "scope", name="uq_list_entries_key"),
    )
    op.create_index("ix_list_entries_scope", "list_entries", ["scope", "kind"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=True),
        sa.Column("rcpt_to", sa.Text(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("helo", sa.String(length=255), nullable=True),
        sa.Column("from_header", sa.Text(), nullable=False),
        sa.Column("to_header", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id_header", sa.Text(), nullable=False),
        sa.Column("date_header", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("auth_json", sa.Text(), nullable=False),
        sa.Column("verdict_json", sa.Text(), nullable=False),
        sa.Column("raw_deleted_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_messages_blob_sha256"), "messages", ["blob_sha256"], unique=False)
    op.create_index(op.f("ix_messages_received_at"), "messages", ["received_at"], unique=False)

    op.create_table(
        "release_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("query_json", sa.Text(), nullable=False),
        sa.Column("recipients_json", sa.Text(), nullable=False),
        sa.Column("rescan", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_release_jobs_created_at"), "release_jobs", ["created_at"], unique=False
    )

    op.create_table(
        "artifact_versions",
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("artifact", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_pk", "artifact"),
    )
    op.create_index(
        "ix_artifact_versions_lookup",
        "artifact_versions",
        ["artifact", "version", "message_pk"],
        unique=False,
    )

    op.create_table(
        "findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=True),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("artifact", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_findings_artifact", "findings", ["artifact", "version", "message_pk"], unique=False
    )
    op.create_index("ix_findings_code", "findings", ["code", "message_pk"], unique=False)
    op.create_index(op.f("ix_findings_message_pk"), "findings", ["message_pk"], unique=False)

    op.create_table(
        "hold_members",
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hold_id", "message_pk"),
    )
    op.create_index(
        op.f("ix_hold_members_message_pk"), "hold_members", ["message_pk"], unique=False
    )

    op.create_table(
        "release_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_release_requests_message_pk"), "release_requests", ["message_pk"], unique=False
    )
    op.create_index(
        "ix_release_requests_state", "release_requests", ["state", "created_at"], unique=False
    )

    op.create_table(
        "releases",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("release_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_pk", "recipient", name="uq_releases_message_recipient"),
    )
    op.create_index("ix_releases_job", "releases", ["job_id", "state"], unique=False)
    op.create_index("ix_releases_state", "releases", ["state", "lease_until"], unique=False)

    op.create_table(
        "trace",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("verdict_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_pk", "recipient", name="uq_trace_message_recipient"),
    )
    op.create_index("ix_trace_action", "trace", ["action", "received_at"], unique=False)
    op.create_index("ix_trace_category", "trace", ["category", "received_at"], unique=False)
    op.create_index("ix_trace_from_addr", "trace", ["from_addr", "received_at"], unique=False)
    op.create_index("ix_trace_mail_from", "trace", ["mail_from", "received_at"], unique=False)
    op.create_index("ix_trace_recipient", "trace", ["recipient", "received_at"], unique=False)
    op.create_index("ix_trace_status", "trace", ["status", "received_at"], unique=False)
    op.create_index("ix_trace_time", "trace", ["received_at", "id"], unique=False)
    _audit_append_only()


def _audit_append_only() -> None:
    # The audit log is append-only: the store has no update/delete API, and the database
    # refuses both too, so not even a hand-written SQL session can rewrite history.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION mailsift_audit_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION mailsift_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION mailsift_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS mailsift_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_index("ix_trace_time", table_name="trace")
    op.drop_index("ix_trace_status", table_name="trace")
    op.drop_index("ix_trace_recipient", table_name="trace")
    op.drop_index("ix_trace_mail_from", table_name="trace")
    op.drop_index("ix_trace_from_addr", table_name="trace")
    op.drop_index("ix_trace_category", table_name="trace")
    op.drop_index("ix_trace_action", table_name="trace")

    op.drop_table("trace")
    op.drop_index("ix_releases_state", table_name="releases")
    op.drop_index("ix_releases_job", table_name="releases")

    op.drop_table("releases")
    op.drop_index("ix_release_requests_state", table_name="release_requests")
    op.drop_index(op.f("ix_release_requests_message_pk"), table_name="release_requests")

    op.drop_table("release_requests")
    op.drop_index(op.f("ix_hold_members_message_pk"), table_name="hold_members")

    op.drop_table("hold_members")
    op.drop_index(op.f("ix_findings_message_pk"), table_name="findings")
    op.drop_index("ix_findings_code", table_name="findings")
    op.drop_index("ix_findings_artifact", table_name="findings")

    op.drop_table("findings")
    op.drop_index("ix_artifact_versions_lookup", table_name="artifact_versions")

    op.drop_table("artifact_versions")
    op.drop_index(op.f("ix_release_jobs_created_at"), table_name="release_jobs")

    op.drop_table("release_jobs")
    op.drop_index(op.f("ix_messages_received_at"), table_name="messages")
    op.drop_index(op.f("ix_messages_blob_sha256"), table_name="messages")

    op.drop_table("messages")
    op.drop_index("ix_list_entries_scope", table_name="list_entries")

    op.drop_table("list_entries")
    op.drop_table("holds")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index("ix_audit_actor", table_name="audit_log")
    op.drop_index("ix_audit_action", table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
