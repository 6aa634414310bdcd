"""What a message is searched by beyond its trace row: the link hosts and the attachment
hashes it carried (one indexed row each), and the normalised Message-ID key.

Filled when a message is recorded (``TraceStore``); messages recorded before migration 0009
have their Message-ID key (backfilled from the stored header) but no link or attachment rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.message import ParsedMessage
from mailsift.store.base import Base

__all__ = ["MessageAttachment", "MessageUrl", "attachment_rows", "message_id_key", "url_rows"]

_KEY_LEN = 255
_MAX_PER_MESSAGE = 200  # a message with 10,000 links is searched by its first 200 hosts


class MessageUrl(Base):
    """A host or registrable domain a message linked to (``www.paypal.com`` and
    ``paypal.com`` for one link)."""

    __tablename__ = "message_urls"
    __table_args__ = (Index("ix_message_urls_domain", "domain", "message_pk"),)

    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(_KEY_LEN), primary_key=True)


class MessageAttachment(Base):
    """The SHA-256 of a file a message carried (archive members included)."""

    __tablename__ = "message_attachments"
    __table_args__ = (Index("ix_message_attachments_sha256", "sha256", "message_pk"),)

    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), default="")


def message_id_key(value: str) -> str:
    """A Message-ID as it is searched: ``<Abc@Example.org>`` and ``abc@example.org`` alike."""
    return value.strip().strip("<>").strip().lower()[:_KEY_LEN]


def domain_key(value: str) -> str:
    """A link host or domain as it is searched (lower case, no trailing dot)."""
    return value.strip().lower().rstrip(".")[:_KEY_LEN]


def url_rows(message_pk: str, msg: ParsedMessage) -> list[dict[str, Any]]:
    keys: dict[str, None] = {}
    for url in msg.urls:
        for name in (url.host, url.domain):
            key = domain_key(name or "")
            if key:
                keys[key] = None
        if len(keys) >= _MAX_PER_MESSAGE:
            break
    return [{"message_pk": message_pk, "domain": k} for k in list(keys)[:_MAX_PER_MESSAGE]]


def attachment_rows(message_pk: str, msg: ParsedMessage) -> list[dict[str, Any]]:
    found: dict[str, str] = {}
    for att in _attachments(msg):
        digest = att.sha256.strip().lower()
        if len(digest) == 64 and digest not in found:
            found[digest] = (att.filename or "")[:255]
        if len(found) >= _MAX_PER_MESSAGE:
            break
    return [{"message_pk": message_pk, "sha256": d, "filename": f} for d, f in found.items()]


def _attachments(msg: ParsedMessage) -> Iterable[Any]:
    yield from msg.attachments
    for inner in msg.embedded:
        yield from _attachments(inner)
