"""Build real messages for rule tests with the stdlib and parse them (imported by tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mailsift.core.message import ParsedMessage
from mailsift.parsing import parse_message

MessageFactory = Callable[..., ParsedMessage]


def build_message(
    *,
    subject: str = "Hello",
    from_: str = "Alice Example <alice@example.org>",
    to: str = "bob@example.net",
    text: str | None = "Hi Bob, see you tomorrow.",
    html: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[tuple[str, bytes, str]] = (),
    omit: Sequence[str] = (),
    html_base64: bool = False,
) -> ParsedMessage:
    """A parsed message; ``omit`` drops default headers (Date, Message-ID, From, ...)."""
    msg = EmailMessage()
    defaults = {
        "From": from_, "To": to, "Subject": subject,
        "Date": formatdate(0), "Message-ID": make_msgid(domain="example.org"),
    }
    for name, value in defaults.items():
        if name not in omit:
            msg[name] = value
    for name, value in headers:
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html", cte="base64" if html_base64 else None)
        else:
            msg.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return parse_message(msg.as_bytes())
