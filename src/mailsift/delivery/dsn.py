"""Delivery status notifications (RFC 3464) for recipients that failed for good.

A message answered 250 whose copy for some recipient the next hop then refuses with 5xx, or
that is still deferred at ``[gateway] spool_max_age_seconds``, must not vanish: its sender gets
a DSN, sent with the null sender (RFC 5321 4.5.5) so it can never be bounced in turn. A message
whose own sender is null (a bounce) gets none: the recipient's trace row says ``failed``.

The report is ``multipart/report; report-type=delivery-status`` with the three parts RFC 3462
and RFC 3464 ask for: a human-readable explanation, ``message/delivery-status`` (one per-message
block, one block per failed recipient) and the original's headers (``text/rfc822-headers``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate

__all__ = ["build_dsn", "status_of"]

_ENHANCED = re.compile(r"^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b")


def status_of(reply: str, *, expired: bool = False) -> str:
    """The RFC 3463 status code for a recipient's last reply: the next hop's enhanced code when
    it gave one, ``4.4.7`` (delivery time expired) for a message that aged out, else the class
    of the reply code with ``.0.0``."""
    if expired:
        return "4.4.7"
    match = _ENHANCED.match(reply)
    if match:
        return match.group(1)
    return f"{reply[0]}.0.0" if reply[:1] in ("4", "5") else "5.0.0"


def _headers_of(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")[:64 * 1024] + b"\r\n"


def _ascii(value: str) -> str:
    return value.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace(
        "\n", " ")


def build_dsn(raw: bytes, *, sender: str, failures: Mapping[str, str], reporting_mta: str,
              arrival: float, ref: str, expired: bool = False) -> bytes:
    """The DSN to ``sender`` about ``failures`` (recipient -> last reply of the next hop)."""
    boundary = f"dsn-{uuid.uuid4().hex}"
    mta = _ascii(reporting_mta)
    why = ("could not be delivered before the retry time ran out" if expired
           else "was refused permanently by the next mail server")
    lines = [f"Your message ({ref}) {why} for these recipients:", ""]
    lines += [f"  <{_ascii(r)}>: {_ascii(reply)}" for r, reply in failures.items()]
    lines += ["", "The headers of your message follow in the last part of this report."]
    per_message = [f"Reporting-MTA: dns; {mta}", f"X-Mailsift-Ref: {ref}",
                   f"Arrival-Date: {format_datetime(datetime.fromtimestamp(arrival, UTC))}"]
    blocks = ["\r\n".join(per_message)]
    for rcpt, reply in failures.items():
        blocks.append("\r\n".join([
            f"Final-Recipient: rfc822; {_ascii(rcpt)}",
            "Action: failed",
            f"Status: {status_of(reply, expired=expired)}",
            f"Diagnostic-Code: smtp; {_ascii(reply)}",
        ]))
    head = "\r\n".join([
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: <{_ascii(sender)}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: <{uuid.uuid4().hex}@{mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ])
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + "\r\n".join(lines) + "\r\n"
        + f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        + "\r\n\r\n".join(blocks) + "\r\n\r\n"
        + f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ).encode("ascii")
    return (head.encode("ascii") + b"\r\n\r\n" + body + _headers_of(raw)
            + f"--{boundary}--\r\n".encode("ascii"))
