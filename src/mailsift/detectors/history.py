"""Sender-history detector: first contact, unusual senders and local domain reputation.

Reads the ``SenderHistory`` (who delivered mail to whom, bounded, learned only from delivered
clean/bulk mail). Signals, all quiet until the history has learned ``min_learned`` messages
(on day one everybody is new):

* ``HIST_FIRST_CONTACT`` - this address never wrote to this recipient (informational; the
  impersonation detector adds weight when it coincides with an impersonation).
* ``HIST_NEW_DOMAIN`` - nobody at the sender's domain ever delivered mail here (small spam
  weight: new domains are where spam and phishing come from, and where legitimate first mails
  come from too, so it never decides alone).
* ``HIST_NAME_NEW_ADDRESS`` - the display name is known from other addresses, this address is
  new and at a domain none of them used ("the CEO writing from a fresh webmail account").
* ``HIST_ESTABLISHED`` - the sender's domain has a delivery record (informational, for
  explanations and for policy/ML features; it never lowers a score).

Cost: up to 3 + recipients look-ups in the history (in memory, or indexed SQLite reads).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from mailsift.config.detectors import HistorySettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors._common import CodeBook, Collector, recipients
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.history.base import SenderHistory
from mailsift.parsing import registrable_domain

__all__ = ["CODES", "SPEC", "HistoryDetector", "build"]

CODES: Mapping[str, CodeSpec] = {
    "HIST_FIRST_CONTACT": CodeSpec(0.0, None, "The sender never wrote to this recipient before"),
    "HIST_NEW_DOMAIN": CodeSpec(1.0, Family.SPAM,
                                "Nobody at the sender's domain ever delivered mail here"),
    "HIST_NAME_NEW_ADDRESS": CodeSpec(2.0, Family.IMPERSONATION_USER,
                                      "A known sender name arrives from a new address at another "
                                      "domain"),
    "HIST_ESTABLISHED": CodeSpec(0.0, None, "The sender's domain has a history of delivered mail"),
}

_DAY = 86400.0


class HistoryDetector:
    name = "history"
    stage = Stage.REPUTATION
    codes = frozenset(CODES)

    def __init__(self, book: CodeBook, history: SenderHistory, *, min_learned: int = 1000,
                 established: int = 5) -> None:
        self.book = book
        self.history = history
        self.min_learned = min_learned
        self.established = established

    def versions(self) -> Mapping[str, str]:
        return {}

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        msg = ctx.message
        sender = msg.from_addr
        if sender is None or not sender.addr or self.history.learned() < self.min_learned:
            return ()
        hist = self.history
        out = Collector(self.book)
        addr = sender.addr.lower()
        org = registrable_domain(sender.domain) if sender.domain else ""
        rcpts = recipients(ctx)
        new_for = [r for r in rcpts if hist.pair(addr, r) is None]
        if new_for:
            out.add("HIST_FIRST_CONTACT", f"{addr} -> {', '.join(new_for[:3])}")
        stats = hist.domain(org) if org else None
        if stats is None:
            if org:
                out.add("HIST_NEW_DOMAIN", org)
        elif stats.count >= self.established:
            now = ctx.received_at or time.time()
            age = max(0.0, (now - stats.first_seen) / _DAY)
            out.add("HIST_ESTABLISHED", f"{org}: {stats.count} messages to {stats.recipients} "
                                        f"recipients since {age:.0f} days")
        if sender.display_name and hist.sender(addr) is None:
            known = [a for a in hist.addresses_for_name(sender.display_name) if a != addr]
            if known and all(a.rsplit("@", 1)[-1] != sender.domain for a in known):
                out.add("HIST_NAME_NEW_ADDRESS",
                        f"{sender.display_name!r} <{addr}>, known as {', '.join(known[:2])}")
        return out.findings()


def build(settings: Settings, services: Services) -> HistoryDetector:
    hist = settings.history
    if services.history is None:
        raise ConfigError("detector 'history' needs the sender history, and none was given "
                          "(Services.history)", source="history")
    return HistoryDetector(
        CodeBook("history", CODES, hist.weights),
        services.history,
        min_learned=hist.min_learned, established=hist.established_messages,
    )


SPEC = DetectorSpec(
    name="history", stage=Stage.REPUTATION, order=30, prefix="HIST_", codes=CODES,
    settings=HistorySettings, factory=build,
    summary="Sender history: first contact, unusual senders, local domain reputation",
)
