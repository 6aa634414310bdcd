"""User reports: recipients (and analysts, admins) say a message was misjudged, and an analyst
triages what they said. Shared by the console, ``/v1/`` and ``mailsift reports``.

* ``create`` — report a message as ``phish`` or ``spam`` (delivered but bad: a miss) or ``ham``
  ("not junk": junked or quarantined but legitimate). A recipient may report only the copies
  addressed to its own mailbox (anything else is "not found", as in the quarantine); an admin or
  analyst may report any message, optionally for one of its recipients. Reporting twice is
  idempotent: the first report comes back, nothing is added or audited again.
* ``triage`` — ``confirmed`` or ``rejected`` with a note. Confirming may, **only when asked**,
  release a ``ham`` report's quarantined copy through the release service (same ledger, exactly
  once) and add an allow entry for its sender, or a block entry for a ``phish``/``spam``
  report's sender, through the list service. Nothing happens on its own: a report never changes
  detection; confirmed not-junk reports become known-good input of the rollout gate
  (``services.report_corpus``), which is how they protect against the next misfire.

Every report and triage is audited (``report.create``, ``report.triage``; releases and list
entries are audited by their own services, ``report.export`` here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from mailsift.core.errors import InputError
from mailsift.core.lists import ListEntry
from mailsift.services.access import NotFound, Principal, own_mailbox, require
from mailsift.services.list_scope import wide_reason
from mailsift.services.lists import ListService, normalise_value
from mailsift.services.release import ReleaseReport, ReleaseService
from mailsift.services.report_corpus import ExportSummary, write_mbox
from mailsift.store import MessageRecord, ReportInfo, ReportPage, Store
from mailsift.store.reports import LABELS, MAX_COMMENT, REPORT_STATES

__all__ = ["LABELS", "REPORT_STATES", "ReportService", "TriageResult"]

#: List entries a confirmed report may add, by label: allow the sender of "not junk", block the
#: sender of phish or spam.
_LIST_ACTION = {"ham": "allow", "phish": "block", "spam": "block"}
_RELEASABLE = ("quarantined", "released")


@dataclass(frozen=True, slots=True)
class TriageResult:
    """A triaged report and what was done along with it (only what was asked for)."""

    report: ReportInfo
    previous: str
    release: ReleaseReport | None = None
    entry: ListEntry | None = None
    entry_existed: bool = False

    def to_dict(self) -> dict[str, Any]:
        entry = None
        if self.entry is not None:
            e = self.entry
            entry = {"id": e.entry_id, "kind": e.kind, "value": e.value, "action": e.action,
                     "scope": e.scope, "expires_at": e.expires_at, "existed": self.entry_existed}
        return {"report": self.report.to_dict(), "previous": self.previous,
                "release": self.release.to_dict() if self.release else None, "entry": entry}


def _label(label: str) -> str:
    value = label.strip().lower()
    if value in ("not-junk", "not_junk", "notjunk"):
        value = "ham"
    if value not in LABELS:
        raise InputError(f"invalid label {label!r} (phish, spam or ham = not junk)")
    return value


def _sender(info: ReportInfo) -> str:
    if not info.sender or "@" not in info.sender:
        raise InputError(f"report {info.id} has no sender address to list")
    return info.sender


class ReportService:
    def __init__(self, store: Store, release: ReleaseService, lists: ListService) -> None:
        self.store = store
        self.release_service = release
        self.lists = lists

    # -- reporting ------------------------------------------------------------------------------
    def create(self, actor: Principal, message: str, label: str, *, comment: str = "",
               recipient: str | None = None) -> tuple[ReportInfo, bool]:
        """Report ``message``; returns ``(report, created)`` (``False``: reported before)."""
        require(actor, "report.create")
        label = _label(label)
        comment = comment.strip()
        if len(comment) > MAX_COMMENT:
            raise InputError(f"the comment is longer than {MAX_COMMENT} characters")
        rec = self.store.trace.get(message)
        if rec is None:
            raise NotFound(f"no message {message}")
        mailbox = (actor.mailbox if actor.restricted else recipient) or None
        copy = None
        if mailbox:
            mailbox = mailbox.strip().lower()
            copy = next((r for r in rec.recipients if r.recipient == mailbox), None)
            if copy is None:
                # the same answer as for a message that does not exist: a recipient learns
                # nothing about mail addressed to others
                if actor.restricted:
                    raise NotFound(f"no message {message}")
                raise InputError(f"{mailbox} is not a recipient of {message}")
        elif actor.restricted:
            raise NotFound(f"no message {message}")
        info, created = self.store.reports.add(
            message=message, reporter=actor.name, label=label, mailbox=mailbox, comment=comment,
            category=copy.category if copy else rec.category,
            action=copy.action if copy else rec.action,
            reasons=[str(c) for c in (rec.verdict or {}).get("reasons") or ()],
            subject=rec.subject, sender=_from_address(rec), received_at=rec.received_at)
        if created:
            self.store.audit.append(actor.name, "report.create", message, {
                "report": info.id, "label": label, "mailbox": mailbox,
                "verdict": f"{info.category}/{info.action}"})
        return info, created

    # -- reading --------------------------------------------------------------------------------
    def _mailbox_scope(self, actor: Principal) -> str | None:
        """``None`` for readers of every report; a recipient's own mailbox otherwise (the
        reports about its mail, whether it filed them in the console, with a token, or an
        analyst filed them for it)."""
        if actor.can("report.read"):
            return None
        require(actor, "report.read.own")
        return own_mailbox(actor).lower()

    def list(self, actor: Principal, *, state: str | None = None, label: str | None = None,
             since: float | None = None, message: str | None = None,
             cursor: str | None = None, limit: int = 50) -> ReportPage:
        if state and state not in REPORT_STATES:
            raise InputError(f"invalid state {state!r} (one of {', '.join(REPORT_STATES)})")
        return self.store.reports.list(
            state=state or None, label=_label(label) if label else None, since=since,
            mailbox=self._mailbox_scope(actor), message=message, cursor=cursor, limit=limit)

    def get(self, actor: Principal, report_id: int) -> ReportInfo:
        mine = self._mailbox_scope(actor)
        info = self.store.reports.get(report_id)
        if info is None or (mine is not None and info.mailbox != mine):
            raise NotFound(f"no report {report_id}")
        return info

    def count(self, actor: Principal, *, state: str | None = None) -> int:
        require(actor, "report.read")
        return self.store.reports.count(state=state)

    # -- triage ---------------------------------------------------------------------------------
    async def triage(self, actor: Principal, report_id: int, state: str, *, note: str = "",
                     release: bool = False, list_entry: str | None = None,
                     expires_at: float | None = None) -> TriageResult:
        """Confirm or reject a report. ``release`` (a ``ham`` report) releases its quarantined
        copy — the reporter's mailbox, or every quarantined recipient when an analyst filed it
        without one; ``list_entry`` (``sender`` or ``domain``) adds an admin allow (ham) or block
        (phish, spam) entry for its sender. Both only on ``confirmed``, both only when asked.

        Everything is checked before anything changes, so a refused option leaves the report
        as it was."""
        require(actor, "report.triage")
        if state not in ("confirmed", "rejected"):
            raise InputError(f"invalid triage {state!r} (confirmed or rejected)")
        if len(note) > MAX_COMMENT:
            raise InputError(f"the note is longer than {MAX_COMMENT} characters")
        info = self.store.reports.get(report_id)
        if info is None:
            raise NotFound(f"no report {report_id}")
        if (release or list_entry) and state != "confirmed":
            raise InputError("only a confirmed report may release a message or add a list entry")
        recipients: tuple[str, ...] = ()
        if release:
            recipients = self._releasable(actor, info)
        entry_value = ""
        if list_entry:
            entry_value = self._entry_value(actor, info, list_entry, expires_at)

        updated, previous = self.store.reports.set_state(report_id, state, actor=actor.name,
                                                         note=note.strip())
        self.store.audit.append(actor.name, "report.triage", info.message, {
            "report": report_id, "label": info.label, "from": previous, "to": state,
            "note": note.strip(), "release": release, "list_entry": list_entry})
        report = None
        if release:
            report = await self.release_service.release(
                actor, info.message, recipients,
                reason=f"report {report_id} confirmed: not junk")
        entry, existed = None, False
        if list_entry:
            entry, existed = self._add_entry(actor, info, list_entry, entry_value, expires_at)
        return TriageResult(updated, previous, report, entry, existed)

    def _releasable(self, actor: Principal, info: ReportInfo) -> tuple[str, ...]:
        require(actor, "quarantine.release")
        if info.label != "ham":
            raise InputError(f"report {info.id} says {info.label}: only not-junk reports release")
        rec = self.store.trace.get(info.message)
        if rec is None:
            raise InputError(f"message {info.message} is no longer stored (retention)")
        held = [r for r in rec.recipients if r.action == "quarantine"
                and r.status in _RELEASABLE and (not info.mailbox or r.recipient == info.mailbox)]
        if not held:
            raise InputError(f"message {info.message} has no quarantined copy"
                             + (f" for {info.mailbox}" if info.mailbox else "") + " to release")
        if not rec.raw_available:
            raise InputError(f"the original of {info.message} is no longer kept")
        # named explicitly: "every quarantined recipient" would include deleted copies, which
        # the release refuses, after the triage was recorded
        return tuple(r.recipient for r in held)

    def _entry_value(self, actor: Principal, info: ReportInfo, kind: str,
                     expires_at: float | None) -> str:
        require(actor, "lists.write")
        if kind not in ("sender", "domain"):
            raise InputError(f"invalid list entry {kind!r} (sender or domain)")
        if expires_at is not None and expires_at <= self.store.clock.now():
            raise InputError("the expiry is in the past")
        sender = _sender(info)
        value = normalise_value(kind, sender if kind == "sender" else sender.rpartition("@")[2])
        wide = wide_reason(kind, value, "admin")
        if wide is not None:  # refused before the triage is recorded
            raise InputError(f"{kind} {value} is wide: {wide}; list the sender instead (or add "
                             "the entry itself as a forced list entry, with a reason; audited)")
        return value

    def _add_entry(self, actor: Principal, info: ReportInfo, kind: str, value: str,
                   expires_at: float | None) -> tuple[ListEntry, bool]:
        action = _LIST_ACTION[info.label]
        same = self.store.lists.entries(kind=kind, scope="admin", action=action, value=value)
        if same:
            return same[0], True
        entry = self.lists.add(actor, kind, value, action, expires_at=expires_at,
                               note=f"report {info.id} ({info.label}) of {info.message}")
        return entry, False

    # -- the corpus -----------------------------------------------------------------------------
    def export(self, actor: Principal, out: BinaryIO, *, label: str,
               state: str | None = "confirmed", since: float | None = None) -> ExportSummary:
        """Write the originals of reported messages to ``out`` as an mbox (see
        ``services.report_corpus``); messages whose original is gone are counted, not written."""
        require(actor, "report.read")
        label = _label(label)
        if state is not None and state not in REPORT_STATES:
            raise InputError(f"invalid state {state!r} (one of {', '.join(REPORT_STATES)})")
        summary = write_mbox(self.store, out, label=label, state=state, since=since)
        self.store.audit.append(actor.name, "report.export", label, {
            "state": state, "since": since, "written": summary.written,
            "missing": summary.missing})
        return summary


def _from_address(rec: MessageRecord) -> str:
    """The From address policy matches list entries against (``policy.lists``), else the
    envelope sender."""
    from_addr = next((r.from_addr for r in rec.recipients if r.from_addr), "")
    return from_addr or (rec.mail_from or "").lower()
