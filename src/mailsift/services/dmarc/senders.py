"""What the ingested reports say about our domains: who sends as them, who fails, and what
``p=reject`` would do today. One use case for the console, the API and CSV.

"Would reject" counts the messages of the window that failed DMARC (neither SPF nor DKIM
aligned): under ``p=reject`` receivers would refuse them. They are split into *sources that
also pass* (a legitimate sender with a gap: a server missing from SPF, a stream not signed;
those messages would be lost) and *sources that never pass* (unauthorised or spoofing; those
are what ``p=reject`` is for). Reading needs ``trace.read`` (admins and analysts).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from mailsift.core.protocols import Clock
from mailsift.services.access import Principal, require
from mailsift.store.dmarc import DmarcStore, JobRow, SenderSummary

__all__ = ["CSV_COLUMNS", "DmarcService", "DomainOutlook"]

CSV_COLUMNS = ("header_from", "source_ip", "messages", "dmarc_pass", "dmarc_fail",
               "spf_aligned", "spf_unaligned", "dkim_aligned", "dkim_unaligned",
               "dkim_selectors", "first_day", "last_day", "reporters", "verdict")


@dataclass(frozen=True, slots=True)
class DomainOutlook:
    domain: str
    published_p: str
    messages: int
    dmarc_pass: int
    sources: int
    failing_known: int  # failures from sources that also pass: lost under p=reject
    failing_unknown: int  # failures from sources that never pass: stopped under p=reject

    @property
    def would_reject(self) -> int:
        return self.failing_known + self.failing_unknown

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "published_p": self.published_p,
                "messages": self.messages, "dmarc_pass": self.dmarc_pass,
                "dmarc_fail": self.messages - self.dmarc_pass, "sources": self.sources,
                "p_reject_would_reject": self.would_reject,
                "p_reject_would_lose_legitimate": self.failing_known,
                "p_reject_would_stop_unauthorised": self.failing_unknown}


def sender_verdict(s: SenderSummary) -> str:
    if s.dmarc_fail == 0:
        return "passes"
    if s.dmarc_pass == 0:
        return "never passes (unauthorised?)"
    return "sometimes fails (fix before p=reject)"


class DmarcService:
    def __init__(self, store: DmarcStore, clock: Clock, our_domains: tuple[str, ...] = ()):
        self.store = store
        self.clock = clock
        self.our_domains = our_domains

    def window(self, days: int) -> tuple[str, str]:
        today = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC).date()
        return (today - dt.timedelta(days=max(days, 1) - 1)).isoformat(), today.isoformat()

    def senders(self, actor: Principal, *, days: int = 7,
                domain: str | None = None) -> list[SenderSummary]:
        require(actor, "trace.read")
        first, last = self.window(days)
        domains = (domain.lower(),) if domain else self.our_domains
        return self.store.senders(first, last, domains=domains)

    def outlook(self, actor: Principal, *, days: int = 7) -> list[DomainOutlook]:
        senders = self.senders(actor, days=days)
        first, last = self.window(days)
        published = self.store.published_policies(first, last)
        by_domain: dict[str, list[SenderSummary]] = {}
        for s in senders:
            by_domain.setdefault(s.header_from, []).append(s)
        out = []
        for domain, group in sorted(by_domain.items()):
            known = sum(s.dmarc_fail for s in group if s.dmarc_pass > 0)
            unknown = sum(s.dmarc_fail for s in group if s.dmarc_pass == 0)
            p = published.get(domain) or _parent_policy(domain, published)
            out.append(DomainOutlook(domain, p, sum(s.messages for s in group),
                                     sum(s.dmarc_pass for s in group), len(group), known,
                                     unknown))
        return out

    def daily(self, actor: Principal, *, days: int = 7,
              domain: str | None = None) -> list[dict[str, Any]]:
        require(actor, "trace.read")
        first, last = self.window(days)
        return self.store.daily(first, last, domain=domain.lower() if domain else None)

    def csv(self, actor: Principal, *, days: int = 7, domain: str | None = None) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for s in self.senders(actor, days=days, domain=domain):
            d = s.to_dict()
            d["dkim_selectors"] = " ".join(s.selectors)
            d["verdict"] = sender_verdict(s)
            writer.writerow([_cell(d[c]) for c in CSV_COLUMNS])
        return buf.getvalue()

    def reports(self, actor: Principal, *, days: int = 30) -> list[dict[str, Any]]:
        require(actor, "trace.read")
        return self.store.ingested_reports(since=self.clock.now() - days * 86400)

    def outgoing(self, actor: Principal, *, state: str | None = None,
                 limit: int = 100) -> list[JobRow]:
        require(actor, "trace.read")
        return self.store.jobs(state=state, limit=limit)


def _parent_policy(domain: str, published: dict[str, str]) -> str:
    labels = domain.split(".")
    for i in range(1, len(labels) - 1):
        parent = ".".join(labels[i:])
        if parent in published:
            return published[parent]
    return ""


def _cell(value: Any) -> Any:
    # a cell a spreadsheet would run as a formula is quoted (CSV injection)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
