"""Quarantine use cases: list, show (with a safe preview), download, delete, release requests.

Release itself lives in ``services.release`` (single) and ``services.bulk_release`` (by query).
A recipient principal only ever sees rows addressed to its own mailbox; the check is here, so
every interface inherits it. So is the quarantine policy of each category
(``services.quarantine_policy``): what a recipient may see, preview, download or ask for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsift.core.errors import LimitExceeded, ParseError, StoreError
from mailsift.parsing import parse_message
from mailsift.services.access import NotFound, Principal, own_mailbox, require
from mailsift.services.preview import sanitize_html
from mailsift.services.quarantine_policy import QuarantinePolicies
from mailsift.store import MessageRecord, Page, RequestInfo, Store, TraceQuery, TraceRecord

__all__ = ["QuarantineService", "QuarantineView"]

_PREVIEW_TEXT = 100_000


@dataclass(frozen=True, slots=True)
class QuarantineView:
    """What an operator (or the recipient) sees of one quarantined message."""

    record: MessageRecord
    headers: tuple[tuple[str, str], ...] = ()
    text: str = ""
    preview_html: str = ""
    releases: dict[str, tuple[str, str]] = field(default_factory=dict)
    release_notes: dict[str, str] = field(default_factory=dict)  # why failed / uncertain

    def to_dict(self) -> dict[str, Any]:
        out = self.record.to_dict()
        out["headers_all"] = [[k, v] for k, v in self.headers]
        out["text"] = self.text
        out["preview_html"] = self.preview_html
        out["releases"] = {r: {"state": s, "release_id": rid,
                               "note": self.release_notes.get(r, "")}
                           for r, (s, rid) in self.releases.items()}
        return out


class QuarantineService:
    def __init__(self, store: Store, policies: QuarantinePolicies | None = None) -> None:
        self.store = store
        self.policies = policies or QuarantinePolicies()

    def _scope(self, actor: Principal, query: TraceQuery) -> TraceQuery:
        if actor.restricted:
            require(actor, "quarantine.read.own")
            return dataclasses.replace(query, recipient=own_mailbox(actor),
                                       action="quarantine")
        require(actor, "quarantine.read")
        return dataclasses.replace(query, action="quarantine")

    def search(self, actor: Principal, query: TraceQuery | None = None, *,
             cursor: str | None = None, limit: int = 50, sort: str = "received",
             descending: bool = True) -> Page:
        """Quarantined recipients, newest first unless sorted otherwise (``status`` defaults
        to ``quarantined``)."""
        q = query or TraceQuery()
        if q.status is None:
            q = dataclasses.replace(q, status="quarantined")
        page = self.store.trace.search(self._scope(actor, q), cursor=cursor, limit=limit,
                                       sort=sort, descending=descending)
        if actor.restricted:
            seen = tuple(i for i in page.items if self.policies.allows(i.category, "see"))
            if len(seen) != len(page.items):
                page = dataclasses.replace(page, items=seen)
        return page

    def count(self, actor: Principal, query: TraceQuery | None = None) -> tuple[int, int]:
        q = query or TraceQuery()
        if q.status is None:
            q = dataclasses.replace(q, status="quarantined")
        return self.store.trace.count(self._scope(actor, q))

    def record(self, actor: Principal, message: str) -> MessageRecord:
        """The stored record, limited to what ``actor`` may see; NotFound otherwise."""
        rec = self.store.trace.get(message)
        if rec is None:
            raise NotFound(f"no quarantined message {message}")
        visible = [r for r in rec.recipients if r.action == "quarantine"]
        if actor.restricted:
            require(actor, "quarantine.read.own")
            mine = (actor.mailbox or "").lower()
            visible = [r for r in visible if r.recipient == mine
                       and self.policies.allows(r.category, "see")]
        else:
            require(actor, "quarantine.read")
        if not visible:
            raise NotFound(f"no quarantined message {message}")
        if actor.restricted:
            rec = dataclasses.replace(rec, recipients=tuple(visible),
                                      rcpt_to=tuple(r.recipient for r in visible))
        return rec

    def show(self, actor: Principal, message: str) -> QuarantineView:
        rec = self.record(actor, message)
        releases = self.store.releases.states(message)
        if actor.restricted:
            releases = {r: s for r, s in releases.items() if r == (actor.mailbox or "").lower()}
        notes = {r: n for r, n in self.store.releases.notes(message).items() if r in releases}
        if not rec.raw_available or not self.policies.permits(actor, rec, "preview"):
            return QuarantineView(rec, releases=releases, release_notes=notes)
        try:
            raw = self.store.trace.raw(message)
        except StoreError as exc:  # the record stays readable when its original is not
            return QuarantineView(rec, text=f"[the original cannot be read: {exc}]",
                                  releases=releases, release_notes=notes)
        try:
            parsed = parse_message(raw)
        except (ParseError, LimitExceeded) as exc:
            return QuarantineView(rec, text=f"[cannot parse the message: {exc}]",
                                  releases=releases, release_notes=notes)
        return QuarantineView(
            rec,
            headers=parsed.headers,
            text=parsed.text[:_PREVIEW_TEXT],
            preview_html=sanitize_html(parsed.html) if parsed.html else "",
            releases=releases,
            release_notes=notes,
        )

    def download(self, actor: Principal, message: str) -> bytes:
        """The original ``.eml`` bytes, exactly as received. To a recipient only when its
        category's policy grants ``download``: never for malware by default (the original *is*
        the payload); staff may, audited."""
        rec = self.record(actor, message)
        if not self.policies.permits(actor, rec, "download"):
            category = self.policies.category_of(rec, actor.mailbox)
            self.store.audit.append(actor.name, "quarantine.download.refused", message,
                                    {"reason": "policy", "category": category})
            self.policies.check(actor, rec, "download")
        self.store.audit.append(actor.name, "quarantine.download", message)
        return self.store.trace.raw(message)

    def delete(self, actor: Principal, message: str, *, reason: str = "") -> int:
        """Delete the quarantined original; the trace record stays (status ``deleted``)."""
        require(actor, "quarantine.delete")
        rec = self.record(actor, message)
        self.store.retention.delete_raw(message)
        n = self.store.trace.set_status(
            message, "deleted", [r.recipient for r in rec.recipients], only_from="quarantined"
        )
        self.store.audit.append(actor.name, "quarantine.delete", message,
                                {"recipients": n, "reason": reason})
        return n

    def request_release(self, actor: Principal, message: str, *, recipient: str | None = None,
                        reason: str = "") -> RequestInfo:
        """A recipient asks for its copy; admins or analysts may file one on its behalf."""
        require(actor, "request.create")
        rec = self.record(actor, message)
        self.policies.check(actor, rec, "request_release")
        rcpt = (actor.mailbox if actor.restricted else recipient) or ""
        rcpt = rcpt.lower()
        if not any(r.recipient == rcpt and r.status == "quarantined" for r in rec.recipients):
            raise NotFound(f"{rcpt or 'recipient'} has no quarantined copy of {message}")
        info = self.store.requests.create(message, rcpt, requested_by=actor.name, reason=reason)
        self.store.audit.append(actor.name, "request.create", message,
                                {"request": info.id, "recipient": rcpt, "reason": reason})
        return info

    def request_rows(self, actor: Principal,
                     requests: Sequence[RequestInfo]) -> dict[int, TraceRecord]:
        """The trace row (sender, subject, category...) of each request's copy, where the
        actor may see it (a recipient: its own mailbox, categories its policy shows)."""
        rows = self.store.trace.rows_of([q.message for q in requests])
        out: dict[int, TraceRecord] = {}
        for q in requests:
            row = rows.get((q.message, q.recipient.lower()))
            if row is None:
                continue
            if actor.restricted and (row.recipient != (actor.mailbox or "").lower()
                                     or not self.policies.allows(row.category, "see")):
                continue
            out[q.id] = row
        return out

    def requests(self, actor: Principal, *, state: str | None = None,
                 limit: int = 100) -> list[RequestInfo]:
        if actor.restricted:
            require(actor, "quarantine.read.own")
            return self.store.requests.list(state=state, recipient=own_mailbox(actor),
                                            limit=limit)
        require(actor, "quarantine.read")
        return self.store.requests.list(state=state, limit=limit)

