"""Release requests close the loop: the recipient hears the decision, admins hear of requests.

Run beside the digests (``mailsift serve``'s schedule and ``mailsift digest send --now``):

* a recipient whose release request was approved or denied gets one short mail saying so (and
  the admin's note) — exactly once across nodes: the notice is claimed in the digest claim
  table (``store.enduser``) as ``request:<id>`` before it is sent;
* the addresses in ``[self_service] request_digest_to`` get one mail per digest period listing
  the release requests still pending that were filed since the last such mail (claimed as
  ``admins`` for the period), not one mail per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from sqlalchemy import select

from mailsift.config.schema import Settings
from mailsift.delivery.relay import Relay
from mailsift.services.digests import MAIL_POLICY
from mailsift.store import Store
from mailsift.store.db import read_only
from mailsift.store.enduser import EndUserStore
from mailsift.store.models import ReleaseRequest

__all__ = ["NoticeRun", "RequestNotices"]

log = logging.getLogger("mailsift.request_notices")
_LOOKBACK = 7 * 86400.0
_ADMINS = "admins"


@dataclass(slots=True)
class NoticeRun:
    decisions: list[int] = field(default_factory=list)
    pending: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class RequestNotices:
    def __init__(self, store: Store, settings: Settings, *,
                 relay_factory: Callable[[], Relay] | None = None, node: str = "") -> None:
        self.store = store
        self.settings = settings
        self.enduser = EndUserStore(store.engine, store.clock)
        host, port = settings.store.release_target()
        s = settings.store
        self.relay_factory = relay_factory or (
            lambda: Relay(host, port, timeout=s.release_timeout, helo=s.release_helo))
        self.node = node or "node"

    def _mail(self, to: list[str], subject: str, text: str) -> EmailMessage:
        conf = self.settings.enduser.digest
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = formataddr((conf.from_name, conf.from_address))
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.fromtimestamp(self.store.clock.now(), UTC))
        msg["Message-ID"] = make_msgid("request", conf.from_address.rpartition("@")[2]
                                       or "mailsift.local")
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(text)
        return msg

    async def run(self, period: int) -> NoticeRun:
        out = NoticeRun()
        if self.settings.enduser.self_service.approval_mail == "on":
            await self._decisions(out)
        if self.settings.enduser.self_service.request_digest_to:
            await self._pending(period, out)
        return out

    async def _decisions(self, out: NoticeRun) -> None:
        now = self.store.clock.now()
        with read_only(self.store.engine) as conn:
            rows = conn.execute(
                select(ReleaseRequest).where(ReleaseRequest.state.in_(("approved", "denied")),
                                             ReleaseRequest.decided_at > now - _LOOKBACK)
            ).all()
        if not rows:
            return
        won = self.enduser.claim(0, [(f"request:{r.id}", now, 1) for r in rows],
                                 node=self.node, lease=600.0)
        mine = [r for r in rows if f"request:{r.id}" in won]
        if not mine:
            return
        subjects = self._subjects([r.message_pk for r in mine])
        results: list[tuple[str, str, float, int, str]] = []
        base = self.settings.enduser.digest.base_url
        async with self.relay_factory() as relay:
            for r in mine:
                approved = r.state == "approved"
                subject = subjects.get(r.message_pk, "")
                outcome_words = ("approved: it has been delivered to your inbox" if approved
                                 else "denied: the message stays in quarantine")
                text = (f"Your request to release the message \"{subject}\" was "
                        f"{outcome_words}.\n")
                if r.note:
                    text += f"\nNote from the administrator: {r.note}\n"
                text += f"\nYour quarantine: {base}/signin/link\n"
                msg = self._mail([r.recipient],
                                 f"Release request {'approved' if approved else 'denied'}: "
                                 f"{subject[:80]}", text)
                outcome = await relay.send(msg.as_bytes(),
                                           self.settings.enduser.digest.from_address,
                                           [r.recipient])
                key = f"request:{r.id}"
                if r.recipient in outcome.accepted:
                    out.decisions.append(r.id)
                    results.append((key, "sent", now, 1, outcome.reply))
                else:
                    out.failed[key] = outcome.reply
                    results.append((key, "failed", now, 1, outcome.reply))
        self.enduser.finish(0, results)

    def _subjects(self, ids: list[str]) -> dict[str, str]:
        from mailsift.store.models import MessageRow

        with read_only(self.store.engine) as conn:
            return {m: s for m, s in conn.execute(
                select(MessageRow.id, MessageRow.subject).where(MessageRow.id.in_(ids[:1000])))}

    async def _pending(self, period: int, out: NoticeRun) -> None:
        now = self.store.clock.now()
        since = self.enduser.watermarks([_ADMINS]).of(_ADMINS, now - _LOOKBACK)
        with read_only(self.store.engine) as conn:
            rows = conn.execute(
                select(ReleaseRequest).where(ReleaseRequest.state == "pending",
                                             ReleaseRequest.created_at > since)
                .order_by(ReleaseRequest.created_at)).all()
        if not rows:
            return
        until = max(r.created_at for r in rows)
        if _ADMINS not in self.enduser.claim(period, [(_ADMINS, until, len(rows))],
                                             node=self.node, lease=600.0):
            return
        subjects = self._subjects([r.message_pk for r in rows])
        base = self.settings.enduser.digest.base_url
        lines = [f"{len(rows)} release request(s) are waiting for a decision:", ""]
        for r in rows[:500]:
            lines.append(f"- #{r.id} {r.recipient}: \"{subjects.get(r.message_pk, '')}\""
                         + (f" ({r.reason})" if r.reason else ""))
        lines += ["", f"Decide in the console: {base}/requests"]
        to = list(self.settings.enduser.self_service.request_digest_to)
        msg = self._mail(to, f"[mailsift] {len(rows)} release request(s) pending",
                         "\n".join(lines) + "\n")
        async with self.relay_factory() as relay:
            outcome = await relay.send(msg.as_bytes(), self.settings.enduser.digest.from_address,
                                       to)
        state = "sent" if outcome.accepted else "failed"
        if state == "sent":
            out.pending = len(rows)
        else:
            out.failed[_ADMINS] = outcome.reply
        self.enduser.finish(period, [(_ADMINS, state, until, len(rows), outcome.reply)])
