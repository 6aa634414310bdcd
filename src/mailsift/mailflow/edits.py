"""Message edits of flow rules on raw bytes: subject, header fields and the banner.

Header edits work on the header block as bytes (``delivery.headers``), so nothing else in the
message changes. The banner has to change body parts, so it re-serialises the message (as any
banner does, it breaks DKIM body hashes; the message was verified before).
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage

from mailsift.delivery.headers import add_headers, strip_headers, tag_subject

__all__ = ["add_banner", "edit_headers", "has_banner"]


def edit_headers(raw: bytes, *, prepend_subject: str = "", add: Mapping[str, str] = {},
                 set_: Mapping[str, str] = {}, remove: Sequence[str] = ()) -> bytes:
    """``remove`` and ``set_`` drop every field of those names, then ``set_`` and ``add``
    prepend theirs; ``prepend_subject`` tags the subject once."""
    drop = {n.lower() for n in (*remove, *set_)}
    if drop:
        raw = strip_headers(raw, lambda name, _field: name in drop)
    new = [*set_.items(), *add.items()]
    if new:
        raw = add_headers(raw, new)
    return tag_subject(raw, prepend_subject)


def _squash(text: str) -> str:
    """Text with quote markers and whitespace runs removed, lower-case (for 'already there')."""
    text = re.sub(r"(?m)^[ \t]*(?:>[ \t]*)+", "", text)
    return " ".join(text.split()).lower()


def has_banner(body_text: str, banner_text: str) -> bool:
    """The banner is already in the thread: in this message or quoted from an earlier one."""
    key = _squash(banner_text)
    return bool(key) and key in _squash(body_text)


def add_banner(raw: bytes, text: str, html_banner: str = "") -> bytes:
    """Prepend the banner to the first text/plain and text/html body part (not attachments).
    Returns ``raw`` unchanged when the thread already carries it (a reply quoting a bannered
    message) or the message has no text body."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    bodies = [p for p in (plain, rich) if p is not None]
    if not bodies:
        return raw
    shown = text or re.sub(r"<[^>]+>", " ", html_banner)
    for part in bodies:
        try:
            content = part.get_content()
        except (LookupError, ValueError):
            return raw
        if not isinstance(content, str):
            return raw
        if has_banner(re.sub(r"<[^>]+>", " ", content), shown):
            return raw
    for part in bodies:
        content = part.get_content()
        if part.get_content_subtype() == "html":
            block = html_banner or f"<p>{html.escape(text)}</p>"
            block = f'<div class="mailsift-banner">{block}</div>'
            m = re.search(r"<body[^>]*>", content, re.I)
            new = (content[:m.end()] + block + content[m.end():]) if m else block + content
            part.set_content(new, subtype="html", charset="utf-8")
        else:
            part.set_content(f"{shown.strip()}\n\n{content}", charset="utf-8")
    return msg.as_bytes(policy=email.policy.SMTP if b"\r\n" in raw[:2000] else
                        email.policy.default)
