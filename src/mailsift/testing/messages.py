"""Building test messages: a small, explicit builder on top of ``email.message.EmailMessage``."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage

__all__ = ["make_message", "zip_archive"]


def make_message(
    *,
    subject: str = "Hello",
    text: str | None = "Hello there.\n",
    html: str | None = None,
    from_: str = "Alice Example <alice@example.org>",
    to: str = "bob@example.net",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    attachments: Iterable[tuple[str, bytes, str]] = (),
    message_id: str = "<test-1@example.org>",
    date: str = "Fri, 20 Nov 2026 09:30:00 +0000",
) -> bytes:
    """A complete RFC 5322 message as bytes. ``attachments`` are ``(filename, data, mime)``."""
    msg = EmailMessage()
    msg["From"] = from_
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=filename)
    return bytes(msg)


def zip_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A deflated ZIP archive of ``(name, data)`` members, in order (names may repeat)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()
