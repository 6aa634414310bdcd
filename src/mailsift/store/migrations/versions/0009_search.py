"""search and delivery details: Message-ID key, client address index, From text and Reply-To,
link hosts, attachment hashes, delivery attempts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:30:00

Backfilled from what is stored: the Message-ID key from ``messages.message_id_header``, the
trace's From text from ``messages.from_header``. Link hosts and attachment hashes are known only
for messages recorded from now on (the originals of delivered mail are not kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 1000


def _key(value: str | None) -> str:
    return (value or "").strip().strip("<>").strip().lower()[:255]


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("msgid_key", sa.String(length=255), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("reply_to_header", sa.Text(), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("trace") as batch:
        batch.add_column(sa.Column("from_text", sa.String(length=512), nullable=False,
                                   server_default=""))
    conn = op.get_bind()
    messages = sa.table("messages", sa.column("id", sa.String), sa.column("from_header", sa.Text),
                        sa.column("message_id_header", sa.Text),
                        sa.column("msgid_key", sa.String))
    trace = sa.table("trace", sa.column("message_pk", sa.String),
                     sa.column("from_text", sa.String))
    last = ""
    while True:
        rows = conn.execute(sa.select(messages.c.id, messages.c.message_id_header,
                                      messages.c.from_header)
                            .where(messages.c.id > last).order_by(messages.c.id)
                            .limit(_BATCH)).all()
        if not rows:
            break
        keys = [{"pk": r.id, "key": _key(r.message_id_header)} for r in rows]
        conn.execute(messages.update().where(messages.c.id == sa.bindparam("pk"))
                     .values(msgid_key=sa.bindparam("key")), keys)
        texts = [{"pk": r.id, "text": (r.from_header or "")[:512]} for r in rows]
        conn.execute(trace.update().where(trace.c.message_pk == sa.bindparam("pk"))
                     .values(from_text=sa.bindparam("text")), texts)
        last = rows[-1].id
    op.create_index("ix_messages_msgid_key", "messages", ["msgid_key"])
    op.create_index("ix_messages_client_ip", "messages", ["client_ip"])
    op.create_table(
        "message_urls",
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_pk", "domain"),
    )
    op.create_index("ix_message_urls_domain", "message_urls", ["domain", "message_pk"])
    op.create_table(
        "message_attachments",
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_pk", "sha256"),
    )
    op.create_index("ix_message_attachments_sha256", "message_attachments",
                    ["sha256", "message_pk"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("message_pk", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempts_message", "delivery_attempts",
                    ["message_pk", "recipient", "at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_message", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index("ix_message_attachments_sha256", table_name="message_attachments")
    op.drop_table("message_attachments")
    op.drop_index("ix_message_urls_domain", table_name="message_urls")
    op.drop_table("message_urls")
    op.drop_index("ix_messages_client_ip", table_name="messages")
    op.drop_index("ix_messages_msgid_key", table_name="messages")
    with op.batch_alter_table("trace") as batch:
        batch.drop_column("from_text")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reply_to_header")
        batch.drop_column("msgid_key")
