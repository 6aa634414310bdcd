"""Bulk release by query: dry-run count, then a resumable, idempotent job of any size.

A job freezes its query when created (an open-ended time window is closed at "now", so mail
quarantined later is not swept in by a resume). It walks the matching quarantined recipients
page by page with a keyset cursor saved after each page; a resumed job starts at the saved
cursor, and the ledger's atomic claims make re-processing a page harmless. Claims are taken in
chunks (``CLAIM_EVERY`` messages) just before sending and 250s recorded in small batches
(``MARK_EVERY``): a hard crash can leave at most about one chunk ``uncertain``, never a
duplicate; an orderly interruption leaves only the transactions it cut in half.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any

from mailsift.core.errors import InputError
from mailsift.services.access import NotFound, Principal, require
from mailsift.services.release import MessageInfo, ReleaseReport, ReleaseService
from mailsift.store import Claim, JobInfo, TraceQuery

__all__ = ["BulkPreview", "BulkReleaser"]

MARK_EVERY = 25
CLAIM_EVERY = 50


@dataclass(frozen=True, slots=True)
class BulkPreview:
    """The dry-run answer: what a release with this query would send."""

    recipients: int
    messages: int
    already_released: int
    query: TraceQuery

    def to_dict(self) -> dict[str, Any]:
        return {"recipients": self.recipients, "messages": self.messages,
                "already_released": self.already_released, "query": self.query.to_dict()}


def pending_query(query: TraceQuery) -> TraceQuery:
    return dataclasses.replace(query, action="quarantine", status="quarantined")


class BulkReleaser:
    def __init__(self, service: ReleaseService) -> None:
        self.service = service
        self.store = service.store

    def preview(self, actor: Principal, query: TraceQuery) -> BulkPreview:
        require(actor, "quarantine.release")
        n, m = self.store.trace.count(pending_query(query))
        done, _ = self.store.trace.count(dataclasses.replace(query, action="quarantine",
                                                             status="released"))
        return BulkPreview(n, m, done, query)

    def start(self, actor: Principal, query: TraceQuery, *,
              recipients: tuple[str, ...] | None = None, rescan: bool = False,
              reason: str = "") -> JobInfo:
        """Create a job (not yet run); the query's window is closed at now."""
        require(actor, "quarantine.release")
        if rescan and self.service.rescan_fn is None:
            raise InputError("re-scan requested but no scanner is configured")
        if query.until is None:
            query = dataclasses.replace(query, until=self.store.clock.now())
        self.store.analyze()
        n, _ = self.store.trace.count(pending_query(query))
        job = self.store.jobs.create(query, actor=actor.name, recipients=recipients,
                                     rescan=rescan, total=n)
        self.store.audit.append(actor.name, "quarantine.bulk_release.start", job.id,
                                {"query": query.to_dict(), "total": n, "rescan": rescan,
                                 "recipients": list(recipients) if recipients else None,
                                 **({"reason": reason} if reason else {})})
        return job

    async def run(self, actor: Principal, job_id: str, *, page_size: int = 500,
                  reclaim_uncertain: bool = False) -> JobInfo:
        """Run (or resume) a job to the end; returns its final counters."""
        require(actor, "quarantine.release")
        job = self.store.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no release job {job_id}")
        only = {r.lower() for r in job.recipients} if job.recipients else None
        query = pending_query(job.query)
        cursor = job.cursor or None
        self.store.analyze()
        self.store.releases.expire_leases()
        self.store.jobs.progress(job_id, state="running")
        connections = self.store.settings.release_connections
        relays = [self.service.relay_factory() for _ in range(connections)]
        pending: list[tuple[Claim, list[str], str]] = []

        def flush() -> None:
            batch = list(pending)
            pending.clear()
            self.store.releases.mark_sent_many(batch)

        claims: list[Claim] = []
        started: set[int] = set()
        finished: set[int] = set()
        try:
            while True:
                page = self.store.trace.search(query, cursor=cursor, limit=page_size)
                wanted: dict[str, list[str]] = {}
                for item in page.items:
                    if only is None or item.recipient in only:
                        wanted.setdefault(item.message, []).append(item.recipient)
                report = ReleaseReport()
                skipped = 0
                items = list(wanted.items())
                # Claim in small chunks just before sending, not the whole page up front: a
                # hard crash strands at most one chunk as "uncertain".
                for k in range(0, len(items), CLAIM_EVERY):
                    chunk = items[k:k + CLAIM_EVERY]
                    started.clear()
                    finished.clear()
                    claims = self.store.releases.claim(chunk, actor=actor.name, job_id=job_id,
                                                       reclaim_uncertain=reclaim_uncertain)
                    infos = self.service.message_info(list({c.message for c in claims}))
                    skipped += sum(len(r) for _, r in chunk) - sum(len(c.recipients)
                                                                  for c in claims)
                    await self._send_all(claims, infos, relays, job.rescan, report, pending,
                                         flush, started, finished)
                    flush()
                    claims = []
                cursor = page.next_cursor
                self.store.jobs.progress(
                    job_id, cursor=cursor or "", sent=len(report.sent), skipped=skipped,
                    failed=len(report.failed) + len(report.uncertain), kept=len(report.kept),
                )
                if cursor is None:
                    break
        except BaseException:
            # Interrupted (Ctrl-C, cancellation, lost database). Record what got a 250; give
            # back claims never handed to SMTP (certainly not sent: "failed", so a resume
            # sends them); only those caught mid-transaction are honestly "uncertain".
            try:
                flush()
                for i, claim in enumerate(claims):
                    if i in finished:
                        continue
                    if i in started:
                        self.store.releases.mark_uncertain(claim, claim.recipients,
                                                           "interrupted while sending")
                    else:
                        self.store.releases.mark_failed(claim, claim.recipients,
                                                        "interrupted before sending")
                self.store.jobs.progress(job_id, state="interrupted")
            finally:
                for r in relays:
                    r.abort()
                # let the transports' close callbacks run before the loop may end
                with contextlib.suppress(BaseException):
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
            raise
        await asyncio.gather(*(r.close() for r in relays), return_exceptions=True)
        self.store.jobs.progress(job_id, state="done", finished=True)
        final = self.store.jobs.get(job_id)
        assert final is not None
        self.store.audit.append(actor.name, "quarantine.bulk_release.done", job_id,
                                final.to_dict())
        return final

    async def _send_all(self, claims: list[Claim], infos: dict[str, MessageInfo],
                        relays: list[Any], rescan: bool, report: ReleaseReport,
                        pending: list[tuple[Claim, list[str], str]], flush: Any,
                        started: set[int], finished: set[int]) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(claims)):
            queue.put_nowait(i)

        async def worker(relay: Any) -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                claim = claims[i]
                started.add(i)
                accepted, reply = await self.service.deliver(claim, infos[claim.message], relay,
                                                             rescan=rescan, report=report,
                                                             mark_sent=False)
                if accepted:
                    pending.append((claim, accepted, reply))
                finished.add(i)
                if len(pending) >= MARK_EVERY:
                    flush()

        await asyncio.gather(*(worker(r) for r in relays[: max(1, min(len(relays),
                                                                      len(claims)))]))
