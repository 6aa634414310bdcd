"""The report mailbox: users report mail by sending it to ``report-phish@`` (or the like).

What the report buttons of mail clients send is accepted: an ARF feedback report (RFC 5965:
``multipart/report; report-type=feedback-report`` whose third part is the reported message or
its headers), or the reported message forwarded as an attachment (``message/rfc822``, or an
``.eml`` file). The reported message is matched to the trace by the ``X-Mailsift-Ref`` header
mailsift added to it on delivery, else by its ``Message-ID`` among the mail the reporter
received. The report is attributed to the authenticated sender (the ``From`` address) and
enters the reports triage (``services.reports``) exactly as a report from the console would:
the reporter must be a recipient of the reported message, and its quarantine policy must let
it report.

Spoofed reporters are refused: the report mail must pass DMARC for its From domain, or come
from a client in ``[enduser.report_mailbox] internal_networks``. Every report mail, refused or
not, is audited (``report_mail.accepted`` / ``report_mail.refused`` with the reason).
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

from sqlalchemy import select

from mailsift.config.enduser import ReportMailboxSettings
from mailsift.core.auth import AuthStatus
from mailsift.core.errors import MailsiftError
from mailsift.core.network import in_networks
from mailsift.core.result import ScanResult
from mailsift.services.access import Principal
from mailsift.services.reports import ReportService
from mailsift.store import Store
from mailsift.store.db import read_only
from mailsift.store.models import MessageRow, TraceRow

__all__ = ["ReportMailOutcome", "ReportMailbox", "reported_messages"]

log = logging.getLogger("mailsift.report_mailbox")
_MAX_REPORTED = 20  # messages taken from one report mail


@dataclass(frozen=True, slots=True)
class ReportMailOutcome:
    reporter: str
    label: str
    accepted: tuple[int, ...] = ()  # report ids
    refused: str = ""  # why the whole mail was refused
    unmatched: int = 0


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def reported_messages(msg: EmailMessage) -> list[tuple[str, str]]:
    """``(mailsift ref, Message-ID)`` of each message reported in ``msg`` (ARF or forwarded)."""
    found: list[tuple[str, str]] = []
    for part in msg.walk():
        if len(found) >= _MAX_REPORTED:
            break
        ctype = part.get_content_type()
        inner: EmailMessage | None = None
        if ctype == "message/rfc822":
            payload = part.get_payload()
            first = payload[0] if isinstance(payload, list) and payload else None
            inner = first if isinstance(first, EmailMessage) else None
        elif ctype == "text/rfc822-headers" or (
                (part.get_filename() or "").lower().endswith(".eml")):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                inner = _parse(data)
        if isinstance(inner, EmailMessage):
            ref = str(inner.get("X-Mailsift-Ref", "") or "").strip()
            mid = str(inner.get("Message-ID", "") or "").strip()
            if ref or mid:
                found.append((ref, mid))
    return found


class ReportMailbox:
    def __init__(self, store: Store, reports: ReportService,
                 settings: ReportMailboxSettings) -> None:
        self.store = store
        self.reports = reports
        self.settings = settings
        self.networks = [ipaddress.ip_network(n, strict=False)
                         for n in settings.internal_networks]

    def label_for(self, result: ScanResult) -> str | None:
        """The label of the first report address among the recipients, or None."""
        for rcpt in result.envelope.rcpt_to:
            label = self.settings.addresses.get(rcpt.lower())
            if label:
                return label
        return None

    def _internal(self, result: ScanResult) -> bool:
        return in_networks(result.envelope.connection.client_ip, self.networks)

    def _authenticated(self, result: ScanResult, reporter: str) -> bool:
        if self._internal(result):
            return True
        dmarc = result.auth.dmarc if result.auth is not None else None
        return (dmarc is not None and dmarc.result is AuthStatus.PASS
                and dmarc.from_domain.lower() == reporter.rpartition("@")[2])

    def _match(self, ref: str, message_id: str, reporter: str) -> str | None:
        with read_only(self.store.engine) as conn:
            if ref:
                row = conn.execute(select(TraceRow.message_pk).where(
                    TraceRow.message_pk == ref, TraceRow.recipient == reporter)).first()
                if row is not None:
                    return str(row.message_pk)
            if message_id:
                row = conn.execute(
                    select(TraceRow.message_pk)
                    .join(MessageRow, MessageRow.id == TraceRow.message_pk)
                    .where(TraceRow.recipient == reporter,
                           MessageRow.message_id_header == message_id)
                    .order_by(TraceRow.received_at.desc()).limit(1)).first()
                if row is not None:
                    return str(row.message_pk)
        return None

    def accept(self, raw: bytes, result: ScanResult) -> ReportMailOutcome | None:
        """File the reports ``raw`` carries (None: not addressed to a report mailbox)."""
        label = self.label_for(result)
        if label is None:
            return None
        msg = _parse(raw)
        senders = getaddresses([str(v) for v in msg.get_all("From", [])])
        reporter = senders[0][1].lower() if len(senders) == 1 else ""
        outcome = self._accept(msg, result, label, reporter)
        action = "report_mail.refused" if outcome.refused else "report_mail.accepted"
        self.store.audit.append(f"mail:{reporter or '-'}", action, result.id, {
            "label": label, "reports": list(outcome.accepted), "unmatched": outcome.unmatched,
            "reason": outcome.refused, "client": result.envelope.connection.client_ip or ""})
        return outcome

    def _accept(self, msg: EmailMessage, result: ScanResult, label: str,
                reporter: str) -> ReportMailOutcome:
        if not reporter:
            return ReportMailOutcome(reporter, label, refused="no single From address")
        if not self._authenticated(result, reporter):
            return ReportMailOutcome(reporter, label, refused="sender not authenticated: the "
                                     "report must pass DMARC or come from an internal network")
        feedback = str(msg.get_param("report-type", "", header="content-type") or "")
        if msg.get_content_type() == "multipart/report" and feedback != "feedback-report":
            return ReportMailOutcome(reporter, label, refused=f"not a feedback report: "
                                     f"{feedback or 'no report-type'}")
        label = self._arf_label(msg) or label
        reported = reported_messages(msg)
        if not reported:
            return ReportMailOutcome(reporter, label, refused="no reported message attached")
        actor = Principal(f"mail:{reporter}", "recipient", reporter)
        ids: list[int] = []
        unmatched = 0
        for ref, message_id in reported:
            found = self._match(ref, message_id, reporter)
            if found is None:
                unmatched += 1
                continue
            try:
                info, _ = self.reports.create(actor, found, label,
                                              comment=f"reported by mail to the {label} box")
            except MailsiftError as exc:
                log.info("report by %s of %s not filed: %s", reporter, found, exc)
                unmatched += 1
                continue
            ids.append(info.id)
        if not ids:
            return ReportMailOutcome(reporter, label, unmatched=unmatched,
                                     refused="no reported message matches mail this reporter "
                                     "received")
        return ReportMailOutcome(reporter, label, tuple(ids), unmatched=unmatched)

    @staticmethod
    def _arf_label(msg: EmailMessage) -> str | None:
        """RFC 5965 Feedback-Type, when the mail is an ARF report: ``not-spam`` is ham,
        ``fraud`` phish; the mailbox decides otherwise."""
        for part in msg.walk():
            if part.get_content_type() == "message/feedback-report":
                payload = part.get_payload()
                first = payload[0] if isinstance(payload, list) and payload else payload
                text = first.as_string() if isinstance(first, EmailMessage) else str(first)
                for line in text.splitlines():
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "feedback-type":
                        kind = value.strip().lower()
                        return {"not-spam": "ham", "fraud": "phish"}.get(kind)
        return None
