"""``test_with_notify``: tell someone what a flow rule in test would have done.

Run on the end-user mail schedule beside the digests and release-request notices
(``services.enduser_schedule``, every ``[enduser.digest] check_seconds``). The trace is the
queue: each message a ``test_with_notify`` rule matched carries the finding ``MAILFLOW:NAME``;
each (message, rule) is claimed in the digest claim table as ``flow:<message>:<rule>`` before its
notice is sent, so it goes out exactly once whichever node gets there, and a failed send is
claimable again at the next tick. The notice goes to the rule's ``notify`` list (addresses, and
``sender`` -- only a sender of ours: never a notice to an outside address, which would be
backscatter) or, when the rule has none, ``[mailflow] notify_to``. With nobody to tell, the hit
is only logged (as a warning, as before).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from mailsift.config.mailflow import FlowRule, MailflowSettings
from mailsift.config.schema import Settings
from mailsift.delivery.relay import Relay
from mailsift.mailflow.direction import in_domains
from mailsift.services.digests import MAIL_POLICY
from mailsift.store import Store
from mailsift.store.enduser import EndUserStore
from mailsift.store.query import TraceQuery

__all__ = ["FlowNoticeRun", "FlowNotices"]

log = logging.getLogger("mailsift.mailflow")
_LOOKBACK = 2 * 86400.0


@dataclass(slots=True)
class FlowNoticeRun:
    sent: list[str] = field(default_factory=list)  # "message:rule"
    failed: dict[str, str] = field(default_factory=dict)
    nobody: list[str] = field(default_factory=list)


class FlowNotices:
    def __init__(self, store: Store, settings: Settings, rules: Callable[[], MailflowSettings],
                 *, relay_factory: Callable[[], Relay], node: str = "node") -> None:
        self.store = store
        self.settings = settings
        self.rules = rules  # the enforced rule set (the gateway's, which follows the registry)
        self.relay_factory = relay_factory
        self.node = node
        self.enduser = EndUserStore(store.engine, store.clock)

    def _to(self, rule: FlowRule, sender: str) -> list[str]:
        wanted = rule.notify or self.rules().notify_to
        out = []
        for entry in wanted:
            if entry == "sender":
                if sender and in_domains(sender, self.settings.direction.accepted_domains):
                    out.append(sender.lower())
            else:
                out.append(entry)
        return list(dict.fromkeys(out))

    def _mail(self, to: list[str], rule: FlowRule, would: str, rec: dict[str, str]
              ) -> EmailMessage:
        conf = self.settings.enduser.digest
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = formataddr((conf.from_name, conf.from_address))
        msg["To"] = ", ".join(to)
        msg["Subject"] = f"Mail-flow rule {rule.name} (test) matched: {rec['subject'][:80]}"
        msg["Date"] = format_datetime(datetime.fromtimestamp(self.store.clock.now(), UTC))
        msg["Message-ID"] = make_msgid("flow", conf.from_address.rpartition("@")[2]
                                       or "mailsift.local")
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(
            f"The mail-flow rule {rule.name} is in test mode (test_with_notify). It matched this "
            f"message and would have: {would or 'acted'}.\nNothing was changed: the message was "
            "handled as if the rule did not exist.\n\n"
            f"Message:   {rec['subject']}\nFrom:      {rec['sender']}\n"
            f"To:        {rec['rcpt']}\nReference: {rec['message']}\n\n"
            f"See it with: mailsift trace --finding MAILFLOW:{rule.name}\n")
        return msg

    async def run(self) -> FlowNoticeRun:
        out = FlowNoticeRun()
        rules = [r for r in self.rules().rules if r.mode == "test_with_notify"]
        if not rules:
            return out
        now = self.store.clock.now()
        todo: list[tuple[str, FlowRule]] = []
        for rule in rules:
            page = self.store.trace.search(TraceQuery(finding=f"MAILFLOW:{rule.name}",
                                                      since=now - _LOOKBACK), limit=500)
            todo.extend((m, rule) for m in dict.fromkeys(i.message for i in page.items))
        if not todo:
            return out
        keys = [(f"flow:{m}:{rule.name}", now, 1) for m, rule in todo]
        won = self.enduser.claim(0, keys, node=self.node, lease=600.0)
        mine = [(m, rule) for m, rule in todo if f"flow:{m}:{rule.name}" in won]
        if not mine:
            return out
        results: list[tuple[str, str, float, int, str]] = []
        sender_addr = self.settings.enduser.digest.from_address
        async with self.relay_factory() as relay:
            for message, rule in mine:
                key = f"flow:{message}:{rule.name}"
                record = self.store.trace.get(message)
                sender = (record.mail_from or "") if record else ""
                to = self._to(rule, sender)
                if record is None or not to:
                    out.nobody.append(key)
                    results.append((key, "sent", now, 0, "nobody to notify"))
                    continue
                found = re.search(rf"flow rule {re.escape(rule.name)} \[test_with_notify\]: "
                                  r"would have: ([^;]*(?:; (?!flow rule|direction|final)[^;]*)*)",
                                  record.explanation)
                rec = {"subject": record.subject, "sender": sender or record.from_header,
                       "rcpt": ", ".join(record.rcpt_to), "message": message}
                msg = self._mail(to, rule, found.group(1) if found else "", rec)
                outcome = await relay.send(msg.as_bytes(), sender_addr, to)
                if set(to) <= set(outcome.accepted):
                    out.sent.append(key)
                    results.append((key, "sent", now, 1, outcome.reply))
                else:
                    out.failed[key] = outcome.reply
                    results.append((key, "failed", now, 1, outcome.reply))
                    log.warning("flow rule notice %s failed: %s", key, outcome.reply)
        self.enduser.finish(0, results)
        return out
