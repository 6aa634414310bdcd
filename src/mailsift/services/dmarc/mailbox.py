"""The ``rua`` mailbox in the gateway: messages to ``[dmarc_reports] ingest_addresses`` are read
as aggregate reports, after the gateway accepted them.

The message itself takes its normal path (scanned, delivered or quarantined: nothing is
swallowed, so nothing answered 250 can be lost here); a rejected or deferred message is not
read (its sender will retry or give up). Reading runs in a worker thread, off the event loop:
a report can be a 10 MB zip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mailsift.core.result import ScanResult
from mailsift.services.dmarc.ingest import Ingestor, IngestResult

__all__ = ["ReportMailbox"]

log = logging.getLogger("mailsift.dmarc")


class ReportMailbox:
    def __init__(self, ingestor: Ingestor, addresses: tuple[str, ...],
                 run: Callable[[Callable[[], None]], object] | None = None) -> None:
        self.ingestor = ingestor
        self.addresses = frozenset(a.lower() for a in addresses)
        self._run = run
        self.results: list[IngestResult] = []  # the last few, for tests and the log

    def wants(self, result: ScanResult) -> bool:
        return (result.verdict.action.accepts
                and any(r.lower() in self.addresses for r in result.envelope.rcpt_to))

    def observe(self, result: ScanResult, raw: bytes) -> None:
        if not self.addresses or not self.wants(result):
            return
        job = lambda: self._ingest(result.id, raw)  # noqa: E731
        if self._run is not None:
            self._run(job)
        else:
            asyncio.get_running_loop().run_in_executor(None, job)

    def _ingest(self, ref: str, raw: bytes) -> None:
        try:
            out = self.ingestor.ingest_message(raw, f"message {ref}")
        except Exception as exc:  # the store is down: the message itself is still delivered
            log.warning("DMARC report mail %s not read: %s", ref, exc)
            return
        self.results = [*self.results[-9:], out]
        for line in out.errors:
            log.warning("DMARC report mail %s: %s", ref, line)
        if out.stored or out.duplicates:
            log.info("DMARC report mail %s: %d stored, %d duplicate(s)", ref, len(out.stored),
                     len(out.duplicates))
