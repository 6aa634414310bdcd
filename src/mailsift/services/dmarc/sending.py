"""Sending aggregate reports: periods, jobs, building, verifying destinations, the relay.

``ReportSender.schedule`` makes sure a job exists for every policy domain with evaluations in
the last complete period (any node may do it: the store keeps one per domain and period).
``run_due`` claims due jobs one at a time (``DmarcStore.claim``: exactly one node wins a job)
and, for each: aggregates the period in SQL, renders the XML, gzips it, verifies the ``rua``
destinations (size limits, external-destination TXT), and sends one message through the relay.
A destination that answered 250 is remembered, so a retry goes only to the others; a report not
delivered everywhere is retried with a doubling delay and recorded ``failed`` after
``max_attempts``. Every retry reuses the job's Report-ID and file name (RFC 9990 2.5.1), so in
the one window exactly-once cannot close (the next hop said 250 and this node died before
writing it down; its lease then expires and another node sends again) the report consumer sees
the same Report-ID twice and can drop the copy.

Store calls are synchronous and run in a thread (``asyncio.to_thread``) from ``serve``'s loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import math
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path

from mailsift.auth.dmarc import DmarcEvaluator
from mailsift.config.dmarc import DmarcReportSettings
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import Clock, Resolver
from mailsift.delivery.relay import Relay
from mailsift.services.dmarc.feedback import (
    ReportMeta,
    policy_from_record,
    render_feedback,
    report_filename,
    report_subject,
)
from mailsift.services.dmarc.rua import RuaTarget, parse_rua, verify_targets
from mailsift.store.dmarc import DmarcStore, JobRow

__all__ = ["BuiltReport", "ReportSender", "SendOutcome", "last_complete_period",
           "period_containing", "run_purge", "run_schedule"]

log = logging.getLogger("mailsift.dmarc")
DAY = 86400


def period_containing(t: float, hours: int) -> tuple[int, int]:
    """The reporting period around ``t``: aligned to UTC midnight, ``hours`` long."""
    step = hours * 3600
    day = int(t // DAY) * DAY
    begin = day + int((t - day) // step) * step
    return begin, min(begin + step, day + DAY)


def last_complete_period(now: float, hours: int) -> tuple[int, int]:
    begin, _ = period_containing(now, hours)
    return period_containing(begin - 1, hours)


@dataclass(frozen=True, slots=True)
class BuiltReport:
    domain: str
    begin: int
    end: int
    report_id: str
    xml: bytes
    records: int
    messages: int
    rua: str
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class SendOutcome:
    job: int
    domain: str
    state: str  # sent | skipped | failed | retry | lost-claim
    destinations: list[str] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"job": self.job, "domain": self.domain, "state": self.state,
                "destinations": self.destinations, "detail": self.detail}


class ReportSender:
    def __init__(self, store: DmarcStore, settings: DmarcReportSettings, *, receiver: str,
                 resolver: Resolver | None, relay_factory: Callable[[], Relay],
                 clock: Clock, node: str = "") -> None:
        self.store = store
        self.settings = settings
        self.receiver = receiver
        self.resolver = resolver
        self.relay_factory = relay_factory
        self.clock = clock
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        #: reports claimed and built together; they are then sent one by one within the lease
        self.batch = 50

    # --- building ------------------------------------------------------------------------------

    def report_id(self, job_id: int, begin: int) -> str:
        return f"{begin}.{job_id}@{self.receiver}"

    def build(self, domain: str, begin: int, end: int, report_id: str) -> BuiltReport | None:
        """Aggregate one domain's period in SQL and render it; None when it has no rows."""
        return self.build_many([(domain, report_id)], begin, end).get(domain)

    def build_many(self, wanted: Sequence[tuple[str, str]], begin: int,
                   end: int) -> dict[str, BuiltReport]:
        """Reports for several (domain, report id) of one period: two SQL queries in all (the
        grouped rows, the last record of each domain), then one XML document per domain."""
        domains = [d for d, _ in wanted]
        groups = self.store.aggregate_many(domains, begin, end)
        records = self.store.latest_records(domains, begin, end)
        s = self.settings
        out: dict[str, BuiltReport] = {}
        for domain, report_id in wanted:
            rows = groups.get(domain)
            if not rows:
                continue
            record, discovery = records.get(domain, ("", ""))
            policy, errors = policy_from_record(domain, record, discovery or "treewalk")
            meta = ReportMeta(org_name=s.org_name or self.receiver, email=s.email,
                              report_id=report_id, begin=begin, end=end - 1,
                              extra_contact_info=s.extra_contact_info, errors=tuple(errors))
            xml = render_feedback(meta, policy, rows, s.report_format)
            out[domain] = BuiltReport(domain, begin, end, report_id, xml, len(rows),
                                      sum(r.count for r in rows), policy.rua, tuple(errors))
        return out

    def build_jobs(self, jobs: Sequence[JobRow]) -> dict[int, BuiltReport]:
        """The reports of claimed jobs, built per period in batches."""
        by_period: dict[tuple[int, int], list[JobRow]] = {}
        for job in jobs:
            by_period.setdefault((int(job.period_begin), int(job.period_end)), []).append(job)
        out: dict[int, BuiltReport] = {}
        for (begin, end), group in by_period.items():
            built = self.build_many([(j.policy_domain, self._report_id(j)) for j in group],
                                    begin, end)
            for j in group:
                if j.policy_domain in built:
                    out[j.id] = built[j.policy_domain]
        return out

    def _report_id(self, job: JobRow) -> str:
        return job.report_id or self.report_id(job.id, int(job.period_begin))

    def destinations(self, report: BuiltReport) -> tuple[list[RuaTarget], list[str]]:
        """Verified ``rua`` mailboxes. Raises DnsTempError (the caller retries later)."""
        targets, notes = parse_rua(report.rua)
        if not targets:
            return [], notes or ["the DMARC record asks for no aggregate reports (no rua)"]
        if self.resolver is None:
            return [], ["no DNS resolver: external destinations cannot be verified"]
        ok, more = verify_targets(targets, report.domain, self.resolver,
                                  DmarcEvaluator.psl_org)
        return ok, notes + more

    def message(self, report: BuiltReport, gz: bytes, to: list[str], unique: str) -> bytes:
        msg = EmailMessage()
        msg["From"] = self.settings.email
        msg["To"] = ", ".join(to)
        msg["Subject"] = report_subject(report.domain, self.receiver, report.report_id)
        msg["Date"] = formatdate(self.clock.now(), usegmt=True)
        msg["Message-ID"] = f"<{report.report_id}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: nobody answers a report
        msg.set_content(
            f"DMARC aggregate report for {report.domain} from {self.receiver}: "
            f"{report.messages} message(s) in {report.records} record(s), "
            f"{report.begin} to {report.end - 1} (seconds since the epoch, UTC).\n")
        name = report_filename(self.receiver, report.domain, report.begin, report.end - 1,
                               unique)
        msg.add_attachment(gz, maintype="application", subtype="gzip", filename=name)
        return msg.as_bytes(policy=SMTP)

    # --- the schedule --------------------------------------------------------------------------

    def schedule(self, *, period: tuple[int, int] | None = None) -> tuple[int, int, int]:
        """Jobs for ``period`` (default: the last complete one). Returns (begin, end, created)."""
        begin, end = period or last_complete_period(self.clock.now(),
                                                    self.settings.interval_hours)
        created = self.store.ensure_jobs(self.store.policy_domains(begin, end), begin, end)
        return begin, end, created

    async def run_due(self, *, limit: int | None = None) -> list[SendOutcome]:
        """Claim and send due reports until none is left (or ``limit`` were handled)."""
        outcomes: list[SendOutcome] = []
        while limit is None or len(outcomes) < limit:
            want = self.batch if limit is None else min(self.batch, limit - len(outcomes))
            jobs = await asyncio.to_thread(self.store.claim_many, self.node,
                                           self.settings.lease_seconds, limit=want)
            if not jobs:
                break
            try:
                built = await asyncio.to_thread(self.build_jobs, jobs)
            except Exception as exc:  # the store is away: each job is retried later
                built = None
                log.warning("building %d DMARC report(s) failed: %s", len(jobs), exc)
            for job in jobs:
                outcomes.append(await self.send_job(job, built))
        return outcomes

    async def send_job(self, job: JobRow,
                       built: dict[int, BuiltReport] | None = None) -> SendOutcome:
        """Send one claimed job (``built``: its report, from ``build_jobs``; None: build it
        here)."""
        out = SendOutcome(job.id, job.policy_domain, "failed")
        report_id = self._report_id(job)
        try:
            report = (built.get(job.id) if built is not None else
                      await asyncio.to_thread(self.build, job.policy_domain,
                                              int(job.period_begin), int(job.period_end),
                                              report_id))
            if report is None:
                return await self._finish(job, out, "skipped", "no evaluations in the period")
            try:
                targets, notes = await asyncio.to_thread(self.destinations, report)
            except DnsTempError as exc:
                return await self._retry(job, out, f"DNS: {exc}")
            gz = gzip.compress(report.xml, compresslevel=6, mtime=0)  # zlib default
            addresses = [t.address for t in targets]
            raw = self.message(report, gz, addresses or ["undisclosed-recipients:;"],
                               str(job.id))
            if len(raw) > self.settings.max_report_bytes:
                return await self._finish(job, out, "skipped",
                                          f"report of {len(raw)} bytes exceeds "
                                          f"max_report_bytes")
            fitting = [t for t in targets if t.fits(len(raw))]
            notes += [f"{t.address}: report of {len(raw)} bytes exceeds its limit "
                      f"{t.max_bytes}" for t in targets if not t.fits(len(raw))]
            await asyncio.to_thread(self.store.prepared, job, owner=self.node,
                                    report_id=report_id,
                                    destinations=[t.address for t in fitting], size=len(raw),
                                    records=report.records, messages=report.messages)
            if not fitting:
                return await self._finish(job, out, "skipped", "; ".join(notes))
            todo = [t.address for t in fitting if t.address not in job.sent_to]
            raw = self.message(report, gz, [t.address for t in fitting], str(job.id))
            sent = set(job.sent_to)
            relay = self.relay_factory()
            try:
                result = await relay.send(raw, self.settings.email, todo)
            finally:
                await relay.close()
            sent.update(result.accepted)
            await asyncio.to_thread(self.store.progress, job, owner=self.node,
                                    sent_to=sorted(sent))
            out.destinations = sorted(sent)
            missing = [a for a in todo if a not in sent]
            if not missing:
                return await self._finish(job, out, "sent", "; ".join(notes))
            why = "; ".join(f"{a}: {result.refused.get(a, 'uncertain')}" for a in missing)
            return await self._retry(job, out, why)
        except Exception as exc:  # a broken report must not stop the others
            log.exception("DMARC report %s for %s failed", job.id, job.policy_domain)
            return await self._retry(job, out, f"{type(exc).__name__}: {exc}")

    async def _finish(self, job: JobRow, out: SendOutcome, state: str,
                      detail: str) -> SendOutcome:
        held = await asyncio.to_thread(self.store.finish, job, owner=self.node, state=state,
                                       error=detail)
        out.state, out.detail = (state if held else "lost-claim"), detail
        log.info("DMARC report %s for %s: %s %s", job.id, job.policy_domain, out.state, detail)
        return out

    async def _retry(self, job: JobRow, out: SendOutcome, detail: str) -> SendOutcome:
        if job.attempts >= self.settings.max_attempts:
            return await self._finish(job, out, "failed",
                                      f"gave up after {job.attempts} attempt(s): {detail}")
        delay = self.settings.retry_seconds * math.pow(2, max(job.attempts - 1, 0))
        held = await asyncio.to_thread(self.store.retry_later, job, owner=self.node,
                                       at=self.clock.now() + delay, error=detail)
        out.state, out.detail = ("retry" if held else "lost-claim"), detail
        log.warning("DMARC report %s for %s: attempt %d failed (%s); retry in %.0f s",
                    job.id, job.policy_domain, job.attempts, detail, delay)
        return out

    # --- dry run ---------------------------------------------------------------------------------

    def dry_run(self, out_dir: Path, *, period: tuple[int, int] | None = None,
                verify: bool = True) -> list[tuple[Path, BuiltReport, list[str], list[str]]]:
        """Write every report of ``period`` as XML into ``out_dir``; nothing is claimed or
        sent. Returns (file, report, destinations, notes) per report."""
        begin, end = period or last_complete_period(self.clock.now(),
                                                    self.settings.interval_hours)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        domains = self.store.policy_domains(begin, end)
        reports: dict[str, BuiltReport] = {}
        for i in range(0, len(domains), 500):
            reports.update(self.build_many(
                [(d, f"{begin}.dry-run@{self.receiver}") for d in domains[i:i + 500]],
                begin, end))
        for domain in domains:
            report = reports.get(domain)
            if report is None:
                continue
            dests: list[str] = []
            notes: list[str] = []
            if verify:
                try:
                    targets, notes = self.destinations(report)
                    dests = [t.address for t in targets]
                except DnsTempError as exc:
                    notes = [f"DNS: {exc}"]
            path = out_dir / report_filename(self.receiver, domain, begin, end - 1, "dryrun",
                                             "xml")
            path.write_bytes(report.xml)
            written.append((path, report, dests, notes))
        return written


async def run_schedule(sender: ReportSender, stop: asyncio.Event) -> None:
    """``mailsift serve``'s loop: every ``check_seconds`` make the last period's jobs, send what
    is due (here or on any other node: the claims decide), purge old rows. Each node runs it."""
    conf = sender.settings
    while not stop.is_set():
        try:
            await asyncio.to_thread(sender.schedule)
            done = await sender.run_due()
            if done:
                log.info("DMARC reports: %s", ", ".join(f"{o.domain} {o.state}" for o in done))
            await asyncio.to_thread(sender.store.purge_evaluations,
                                    sender.clock.now() - conf.keep_days * DAY)
        except Exception as exc:  # the store is away: try again next round
            log.warning("DMARC report round failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), conf.check_seconds)


async def run_purge(store: DmarcStore, conf: DmarcReportSettings, clock: Clock,
                    stop: asyncio.Event) -> None:
    """``serve`` recording without sending: still drop evaluations older than ``keep_days``
    (``run_schedule`` does it when sending), so the table does not grow for ever."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(store.purge_evaluations, clock.now() - conf.keep_days * DAY)
        except Exception as exc:  # the store is away: next round
            log.warning("DMARC evaluation purge failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 3600)
