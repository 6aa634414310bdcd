"""Plain, frozen views of stored rows that the store hands to services and interfaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MessageRecord", "Page", "TraceRecord"]


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One message and recipient as the trace search returns it."""

    id: int
    message: str
    recipient: str
    received_at: float
    mail_from: str
    from_addr: str
    subject: str
    category: str
    action: str
    score: float
    decided_by: str
    policy: str
    status: str
    updated_at: float
    from_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message": self.message,
            "recipient": self.recipient,
            "received_at": self.received_at,
            "mail_from": self.mail_from,
            "from": self.from_addr,
            "from_header": self.from_text,
            "subject": self.subject,
            "category": self.category,
            "action": self.action,
            "score": self.score,
            "decided_by": self.decided_by,
            "policy": self.policy,
            "status": self.status,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results; ``next_cursor`` is ``None`` on the last page, ``prev_cursor`` on
    the first."""

    items: tuple[TraceRecord, ...]
    next_cursor: str | None = None
    prev_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "next_cursor": self.next_cursor,
                "prev_cursor": self.prev_cursor}


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """Everything recorded about one message: envelope, headers, verdict, findings, versions."""

    id: str
    received_at: float
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    client_ip: str | None
    helo: str | None
    from_header: str
    to_header: str
    subject: str
    message_id_header: str
    date_header: str
    size: int
    blob_sha256: str | None
    category: str
    action: str
    score: float
    decided_by: str
    explanation: str
    auth: Any
    verdict: dict[str, Any]
    findings: tuple[dict[str, Any], ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    recipients: tuple[TraceRecord, ...] = ()
    holds: tuple[str, ...] = ()
    raw_deleted_at: float | None = None
    reply_to_header: str = ""

    @property
    def raw_available(self) -> bool:
        return self.blob_sha256 is not None and self.raw_deleted_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "envelope": {
                "mail_from": self.mail_from,
                "rcpt_to": list(self.rcpt_to),
                "client_ip": self.client_ip,
                "helo": self.helo,
            },
            "headers": {
                "from": self.from_header,
                "to": self.to_header,
                "subject": self.subject,
                "message_id": self.message_id_header,
                "reply_to": self.reply_to_header,
                "date": self.date_header,
            },
            "size": self.size,
            "category": self.category,
            "action": self.action,
            "score": self.score,
            "decided_by": self.decided_by,
            "explanation": self.explanation,
            "auth": self.auth,
            "verdict": self.verdict,
            "findings": list(self.findings),
            "versions": dict(self.versions),
            "recipients": [r.to_dict() for r in self.recipients],
            "holds": list(self.holds),
            "raw_available": self.raw_available,
        }
