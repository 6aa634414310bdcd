"""Releasing quarantined mail to the next hop, exactly once per recipient.

Every release - one message, a recipient's approved request, or a bulk job - goes through the
same steps: claim the (message, recipient) rows in the ledger, optionally re-scan, send with an
``X-Mailsift-Release-Id`` header and the original envelope, then mark each recipient ``sent``
(250), ``failed`` (refused: may be retried) or ``uncertain`` (lost during DATA: not re-sent
unless an operator asks). See docs/store.md, "Release semantics".
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import InputError, StoreError
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action
from mailsift.delivery.relay import Relay
from mailsift.services.access import NotFound, Principal, require
from mailsift.services.release_mark import ReleaseMarks
from mailsift.store import Claim, RequestInfo, Store

__all__ = ["MessageInfo", "ReleaseReport", "ReleaseService", "RescanFn", "with_release_header"]

#: Injected by the composition root: scan these bytes with this envelope, now.
RescanFn = Callable[[bytes, Envelope], ScanResult | Awaitable[ScanResult]]
RELEASE_HEADER = "X-Mailsift-Release-Id"
_KEEP_ACTIONS = (Action.QUARANTINE, Action.REJECT, Action.TEMPFAIL)


def with_release_header(raw: bytes, release_id: str) -> bytes:
    """Prepend the release id header, in the message's own line-ending style."""
    eol = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return f"{RELEASE_HEADER}: {release_id}".encode() + eol + raw


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What sending needs of a stored message: its envelope and where the original is."""

    id: str
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    client_ip: str | None
    helo: str | None
    blob_sha256: str | None

    def original(self, recipient: str) -> str:
        """The envelope recipient as received (trace rows keep them lower-cased)."""
        return next((r for r in self.rcpt_to if r.lower() == recipient), recipient)

    def envelope(self, recipients: Sequence[str]) -> Envelope:
        return Envelope(mail_from=self.mail_from, rcpt_to=tuple(recipients),
                        connection=Connection(client_ip=self.client_ip, helo=self.helo))


@dataclass(slots=True)
class ReleaseReport:
    """Per-recipient outcome of releasing one message (or the running totals of many)."""

    message: str = ""
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    release_ids: list[str] = field(default_factory=list)
    next_hop: str = ""  # host:port the copies were handed to
    replies: dict[str, str] = field(default_factory=dict)  # recipient -> the next hop's 250

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "sent": self.sent, "already": self.already,
                "failed": self.failed, "uncertain": self.uncertain, "kept": self.kept,
                "release_ids": self.release_ids, "next_hop": self.next_hop,
                "replies": self.replies}


class ReleaseService:
    def __init__(self, store: Store, *, relay_factory: Callable[[], Relay] | None = None,
                 rescan: RescanFn | None = None) -> None:
        self.store = store
        s = store.settings
        host, port = s.release_target()
        self.relay_factory = relay_factory or (
            lambda: Relay(host, port, timeout=s.release_timeout, helo=s.release_helo)
        )
        self.rescan_fn = rescan
        self._marks: ReleaseMarks | None = None

    @property
    def marks(self) -> ReleaseMarks:
        if self._marks is None:
            self._marks = ReleaseMarks.of(self.store.settings)
        return self._marks

    def message_info(self, ids: Sequence[str]) -> dict[str, MessageInfo]:
        from sqlalchemy import select

        from mailsift.store.db import read_only
        from mailsift.store.models import MessageRow

        out: dict[str, MessageInfo] = {}
        with read_only(self.store.engine) as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    select(MessageRow.id, MessageRow.mail_from, MessageRow.rcpt_to,
                           MessageRow.client_ip, MessageRow.helo, MessageRow.blob_sha256,
                           MessageRow.raw_deleted_at)
                    .where(MessageRow.id.in_(list(ids[i:i + 500])))
                ).all()
                for r in rows:
                    sha = r.blob_sha256 if r.raw_deleted_at is None else None
                    out[r.id] = MessageInfo(r.id, r.mail_from, tuple(json.loads(r.rcpt_to)),
                                            r.client_ip, r.helo, sha)
        return out

    async def _rescan(self, raw: bytes, env: Envelope) -> ScanResult:
        assert self.rescan_fn is not None
        got = self.rescan_fn(raw, env)
        if inspect.isawaitable(got):
            return await got
        return got

    async def deliver(self, claim: Claim, info: MessageInfo, relay: Relay, *, rescan: bool,
                      report: ReleaseReport, mark_sent: bool = True
                      ) -> tuple[list[str], str]:
        """Send one claim; marks failed/uncertain now, sent now or (bulk) returns them."""
        ledger = self.store.releases
        if info.blob_sha256 is None:
            ledger.mark_failed(claim, claim.recipients, "original not kept")
            report.failed.update({r: "original not kept" for r in claim.recipients})
            return [], ""
        rcpts = list(claim.recipients)
        if rescan and self.rescan_fn is None:
            ledger.mark_failed(claim, rcpts, "re-scan requested but no scanner is configured")
            raise InputError("re-scan requested but no scanner is configured")
        # Nothing has been handed to SMTP yet: whatever goes wrong before the send ends the
        # claim as "failed" with the reason (retried by the next release), never "claimed".
        try:
            raw = self.store.blobs.get(info.blob_sha256)
        except StoreError as exc:
            why = f"original unreadable: {exc}"[:500]
            ledger.mark_failed(claim, rcpts, why)
            report.failed.update({r: why for r in rcpts})
            return [], ""
        if rescan:
            try:
                result = await self._rescan(raw,
                                            info.envelope([info.original(r) for r in rcpts]))
            except Exception as exc:
                why = f"re-scan failed: {type(exc).__name__}: {exc}"[:500]
                ledger.mark_failed(claim, rcpts, why)
                report.failed.update({r: why for r in rcpts})
                return [], ""
            keep: dict[str, str] = {}
            for r in rcpts:
                v = next((rv for k, rv in result.recipients.items() if k.lower() == r),
                         result.verdict)
                if v.action in _KEEP_ACTIONS:
                    keep[r] = f"kept by re-scan: {v.category.value} -> {v.action.value}"
            for r, why in keep.items():
                ledger.mark_failed(claim, [r], why)
            report.kept.update(keep)
            rcpts = [r for r in rcpts if r not in keep]
            if not rcpts:
                return [], ""
        originals = {info.original(r): r for r in rcpts}
        outcome = await relay.send(self.marks.mark(raw, claim.release_id), info.mail_from,
                                   list(originals))
        report.next_hop = f"{getattr(relay, 'host', '?')}:{getattr(relay, 'port', '?')}"
        accepted = [originals[r] for r in outcome.accepted]
        refused = {originals[r]: why for r, why in outcome.refused.items()}
        uncertain = [originals[r] for r in outcome.uncertain]
        if refused:
            for r, why in refused.items():
                ledger.mark_failed(claim, [r], why)
            report.failed.update(refused)
        if uncertain:
            ledger.mark_uncertain(claim, uncertain, outcome.reply)
            report.uncertain.extend(uncertain)
        if accepted and mark_sent:
            ledger.mark_sent(claim, accepted, outcome.reply)
        report.sent.extend(accepted)
        # what the next hop said: mailsift's own reply when the copy passed it again
        report.replies.update({r: outcome.reply for r in accepted})
        return accepted, outcome.reply

    async def release(self, actor: Principal, message: str,
                      recipients: Sequence[str] | None = None, *, rescan: bool = False,
                      reason: str = "", reclaim_uncertain: bool = False) -> ReleaseReport:
        """Release one message to all its quarantined recipients, or to the chosen ones."""
        require(actor, "quarantine.release")
        rec = self.store.trace.get(message)
        if rec is None:
            raise NotFound(f"no message {message}")
        held = {r.recipient: r for r in rec.recipients if r.action == "quarantine"}
        if not held:
            raise NotFound(f"message {message} was not quarantined")
        wanted = [r.lower() for r in recipients] if recipients else list(held)
        unknown = [r for r in wanted if r not in held]
        if unknown:
            raise InputError(f"not a quarantined recipient of {message}: {', '.join(unknown)}")
        deleted = [r for r in wanted if held[r].status == "deleted"]
        if deleted:
            raise InputError(f"the quarantined copy was deleted for: {', '.join(deleted)}")
        report = ReleaseReport(message=message)
        self.store.releases.expire_leases()
        claims = self.store.releases.claim([(message, wanted)], actor=actor.name,
                                           reclaim_uncertain=reclaim_uncertain)
        claimed = {r for c in claims for r in c.recipients}
        report.already = [r for r in wanted if r not in claimed]
        info = self.message_info([message])[message]
        async with self.relay_factory() as relay:
            for claim in claims:
                report.release_ids.append(claim.release_id)
                await self.deliver(claim, info, relay, rescan=rescan, report=report)
        self.store.audit.append(actor.name, "quarantine.release", message, {
            "reason": reason, "rescan": rescan, **report.to_dict(),
        })
        return report

    async def decide_request(self, actor: Principal, request_id: int, *, approve: bool,
                             note: str = "", rescan: bool = False
                             ) -> tuple[RequestInfo, ReleaseReport | None]:
        """Approve (and release to the requesting recipient) or deny a release request."""
        require(actor, "request.decide")
        info = self.store.requests.decide(request_id, "approved" if approve else "denied",
                                          actor=actor.name, note=note)
        self.store.audit.append(actor.name, "request.approve" if approve else "request.deny",
                                info.message, {"request": request_id, "note": note,
                                               "recipient": info.recipient})
        if not approve:
            return info, None
        report = await self.release(actor, info.message, [info.recipient], rescan=rescan,
                                    reason=f"release request {request_id}")
        return info, report
