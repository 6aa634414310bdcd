"""SQLAlchemy 2 table definitions of the store: trace, findings, quarantine release ledger,
release requests and jobs, allow/block lists, holds, API tokens and the audit log.

Timestamps are float seconds since the epoch (UTC): the same type on SQLite and PostgreSQL,
comparable without timezone surprises, and what ``Clock.now()`` returns. The schema itself is
created by Alembic (``store/migrations``); a test compares these models with the migrated
database so the two never drift.
"""

from __future__ import annotations

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.store.base import ADDR, Base, BigId

__all__ = [
    "ApiToken",
    "ArtifactVersion",
    "AuditRecord",
    "BlobRow",
    "FindingRow",
    "Hold",
    "HoldMember",
    "ListEntryRow",
    "MessageRow",
    "ReleaseJob",
    "ReleaseRequest",
    "ReleaseRow",
    "TraceRow",
]

class MessageRow(Base):
    """One scanned message: envelope, key headers, message-level verdict, raw blob reference."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[float] = mapped_column(Float, index=True)
    mail_from: Mapped[str | None] = mapped_column(String(ADDR))
    rcpt_to: Mapped[str] = mapped_column(Text, default="")  # JSON list, original envelope order
    client_ip: Mapped[str | None] = mapped_column(String(64), index=True)
    helo: Mapped[str | None] = mapped_column(String(255))
    from_header: Mapped[str] = mapped_column(Text, default="")
    to_header: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id_header: Mapped[str] = mapped_column(Text, default="")
    #: the Message-ID as searched: without angle brackets and blanks, lower-cased, at most
    #: 255 characters (``search.message_id_key``)
    msgid_key: Mapped[str] = mapped_column(String(255), default="", index=True)
    reply_to_header: Mapped[str] = mapped_column(Text, default="")
    date_header: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    blob_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    decided_by: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[str] = mapped_column(Text, default="")
    auth_json: Mapped[str] = mapped_column(Text, default="null")
    verdict_json: Mapped[str] = mapped_column(Text, default="{}")
    raw_deleted_at: Mapped[float | None] = mapped_column(Float)


class BlobRow(Base):
    """A quarantined original in the database (``[store] blob_backend = "postgresql"``)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class TraceRow(Base):
    """One message and one recipient: the unit of search, delivery status and release."""

    __tablename__ = "trace"
    __table_args__ = (
        UniqueConstraint("message_pk", "recipient", name="uq_trace_message_recipient"),
        Index("ix_trace_time", "received_at", "id"),
        Index("ix_trace_recipient", "recipient", "received_at"),
        Index("ix_trace_mail_from", "mail_from", "received_at"),
        Index("ix_trace_from_addr", "from_addr", "received_at"),
        Index("ix_trace_category", "category", "received_at"),
        Index("ix_trace_action", "action", "received_at"),
        Index("ix_trace_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE")
    )
    recipient: Mapped[str] = mapped_column(String(ADDR))
    received_at: Mapped[float] = mapped_column(Float)
    mail_from: Mapped[str] = mapped_column(String(ADDR), default="")
    from_addr: Mapped[str] = mapped_column(String(ADDR), default="")
    #: the From header as shown (display name and address), for "part of a name" searches
    from_text: Mapped[str] = mapped_column(String(512), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    decided_by: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(String(128), default="")
    verdict_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Float)


class FindingRow(Base):
    """A finding of a message, so 'which messages did rule X version V hit' is an index scan."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_code", "code", "message_pk"),
        Index("ix_findings_artifact", "artifact", "version", "message_pk"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(128))
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    family: Mapped[str | None] = mapped_column(String(32))
    detector: Mapped[str] = mapped_column(String(64), default="")
    artifact: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[str] = mapped_column(String(128), default="")
    state: Mapped[str] = mapped_column(String(16), default="active")
    description: Mapped[str] = mapped_column(Text, default="")
    evidence_json: Mapped[str] = mapped_column(Text, default="[]")


class ArtifactVersion(Base):
    """Every artifact version that contributed to a message's verdict."""

    __tablename__ = "artifact_versions"
    __table_args__ = (Index("ix_artifact_versions_lookup", "artifact", "version", "message_pk"),)

    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    artifact: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(128))


class ReleaseRow(Base):
    """Release state of one (message, recipient): claimed before sending, marked after 250.

    The unique key is what makes release idempotent: whoever releases, a row in state ``sent``
    or ``uncertain`` is never claimed again (see docs/store.md, release semantics).
    """

    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("message_pk", "recipient", name="uq_releases_message_recipient"),
        Index("ix_releases_job", "job_id", "state"),
        Index("ix_releases_state", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE")
    )
    recipient: Mapped[str] = mapped_column(String(ADDR))
    state: Mapped[str] = mapped_column(String(16))
    release_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(ADDR), default="")
    claimed_at: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    reply: Mapped[str] = mapped_column(Text, default="")


class ReleaseJob(Base):
    """A bulk release by query; its fixed query and counters make it resumable."""

    __tablename__ = "release_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str] = mapped_column(String(ADDR))
    query_json: Mapped[str] = mapped_column(Text)
    recipients_json: Mapped[str] = mapped_column(Text, default="null")
    rescan: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    kept: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)


class ReleaseRequest(Base):
    """A recipient asks for a quarantined message; an admin approves (releases) or denies."""

    __tablename__ = "release_requests"
    __table_args__ = (Index("ix_release_requests_state", "state", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(ADDR))
    requested_by: Mapped[str] = mapped_column(String(ADDR))
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(String(ADDR))
    decided_at: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class ListEntryRow(Base):
    """An allow/block entry (kinds and scopes: ``mailsift.core.lists``)."""

    __tablename__ = "list_entries"
    __table_args__ = (
        UniqueConstraint("kind", "value", "action", "scope", name="uq_list_entries_key"),
        Index("ix_list_entries_scope", "scope", "kind"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(1024))
    action: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(String(ADDR + 5))
    expires_at: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(ADDR), default="")
    created_at: Mapped[float] = mapped_column(Float)


class Hold(Base):
    """An incident hold: the messages attached to it survive retention purge and deletion."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    query_json: Mapped[str] = mapped_column(Text, default="{}")
    created_by: Mapped[str] = mapped_column(String(ADDR))
    created_at: Mapped[float] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float)


class HoldMember(Base):
    __tablename__ = "hold_members"

    hold_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("holds.id", ondelete="CASCADE"), primary_key=True
    )
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ApiToken(Base):
    """An API token: only its sha256 is stored; ``subject`` binds a recipient token to a mailbox."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(ADDR))
    created_by: Mapped[str] = mapped_column(String(ADDR))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class AuditRecord(Base):
    """Append-only: the store offers no update or delete, and triggers forbid both."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_action", "action", "at"),
        Index("ix_audit_actor", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(ADDR))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(1024), default="")
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
